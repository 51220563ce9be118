// Package pagerduty connects Sitrep to PagerDuty: the v3 webhook receiver
// (signature check, parsing, redelivery dedup) that turns PagerDuty incident
// events into Sitrep changes, and the two-way sync that acknowledges,
// resolves and annotates the PagerDuty incident when people do so in Sitrep.
package pagerduty

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader carries the body's HMAC-SHA256 signatures.
const SignatureHeader = "X-PagerDuty-Signature"

// Verify reports whether any "v1=<hex>" signature in header is the
// HMAC-SHA256 of body under any of the secrets. Several signatures and
// several secrets make key rotation seamless. Comparison is constant-time.
func Verify(body []byte, header string, secrets [][]byte) bool {
	if header == "" || len(secrets) == 0 {
		return false
	}
	var macs [][]byte
	for _, secret := range secrets {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		macs = append(macs, m.Sum(nil))
	}
	ok := false
	for _, sig := range strings.Split(header, ",") {
		hexSig, found := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
		if !found || len(hexSig) != 2*sha256.Size {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			continue
		}
		for _, want := range macs {
			if hmac.Equal(got, want) { // constant time; keep looping to not leak which matched
				ok = true
			}
		}
	}
	return ok
}

// Sign returns the header value PagerDuty would send for body (tests, load tools).
func Sign(body []byte, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}
