// Package webhook is the HTTP plumbing every webhook receiver shares: read
// a POST body within a size limit, and answer in JSON.
package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Answer writes v as JSON with the status code.
func Answer(w http.ResponseWriter, code int, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
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
