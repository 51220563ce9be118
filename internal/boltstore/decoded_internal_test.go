package boltstore

import (
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// TestDecodedKeepsTwoVersions: a reader whose transaction began before a
// commit reads the version before it, and still finds it decoded; a third
// version pushes the first out.
func TestDecodedKeepsTwoVersions(t *testing.T) {
	var d decoded
	a, b, c := []byte(`{"id":1,"title":"a"}`), []byte(`{"id":1,"title":"b"}`), []byte(`{"id":1,"title":"c"}`)
	d.put(1, a, &incidents.Incident{ID: 1, Title: "a"})
	d.put(1, b, &incidents.Incident{ID: 1, Title: "b"})
	for raw, want := range map[string]string{string(a): "a", string(b): "b"} {
		if got := d.get(1, []byte(raw)); got == nil || got.Title != want {
			t.Fatalf("get %s: %+v, want %q", raw, got, want)
		}
	}
	d.put(1, c, &incidents.Incident{ID: 1, Title: "c"})
	if got := d.get(1, a); got != nil {
		t.Fatalf("the first version is still kept after two more: %+v", got)
	}
	if got := d.get(1, c); got == nil || got.Title != "c" {
		t.Fatalf("get c: %+v", got)
	}
	if want := len(b) + len(c); d.bytes != want {
		t.Fatalf("counted %d bytes, want %d", d.bytes, want)
	}
}
