// Package webhook is the HTTP plumbing every webhook receiver shares: read
// a POST body within a size limit, and answer in JSON.
package webhook

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Answer writes v as JSON with the status code. The answers on a
// webhook's hot path are structs (Stored): encoding/json caches a struct's
// encoder, where a map is sorted and reflected on every call.
func Answer(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, code = []byte(`{"error":"the answer could not be encoded"}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// Stored is the answer to a webhook whose change is durably stored.
type Stored struct {
	Incident  string `json:"incident,omitempty"` // INC-n; empty for a duplicate answered without looking it up
	Created   bool   `json:"created"`
	Duplicate bool   `json:"duplicate"`
	Events    int    `json:"events"` // timeline events the webhook added
}

// ReadBody returns a POST's body of at most max bytes. When the method is
// not POST, the body cannot be read or is too large, it answers (405, 400,
// 413) itself and returns false.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	if r.Method != http.MethodPost {
		Answer(w, http.StatusMethodNotAllowed, map[string]any{"error": "POST only"})
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		Answer(w, http.StatusBadRequest, map[string]any{"error": "could not read the body"})
		return nil, false
	}
	if int64(len(body)) > max {
		Answer(w, http.StatusRequestEntityTooLarge, map[string]any{"error": fmt.Sprintf("body over %d bytes", max)})
		return nil, false
	}
	return body, true
}

// Bearer reports whether an Authorization header carries the token, in
// constant time. The scheme is case-insensitive (RFC 7235: "bearer" and
// "BEARER" are Bearer), so a sender's spelling never loses an alert.
func Bearer(header, token string) bool {
	scheme, got, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

// forwardingHeaders are the headers proxies, meshes and CDNs add to say a
// request came from elsewhere.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Via",
	"True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "X-Original-Forwarded-For", "X-Envoy-External-Address", "X-Cluster-Client-Ip", "Fastly-Client-Ip"}

// Forwarded reports whether a request carries any forwarding header, even
// an empty one: such a request is never taken for a local one.
func Forwarded(r *http.Request) bool {
	for _, h := range forwardingHeaders {
		if _, ok := r.Header[h]; ok {
			return true
		}
	}
	return false
}
