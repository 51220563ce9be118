package commands_test

import (
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// TestUpdatePostsAStatusUpdate: update keeps the status unless its first
// word names another (never resolved: that has its own command), needs a
// message, and goes on the timeline as an update that resets the nudges.
func TestUpdatePostsAStatusUpdate(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 Checkout degraded")
	if r := f.ok(t, "", "update INC-1 rolling back 3.2.0"); r.Incident.Status != incidents.Investigating || !strings.Contains(r.Text, "update posted (INVESTIGATING): rolling back 3.2.0") {
		t.Errorf("same status: %+v", r)
	}
	if r := f.ok(t, "", "update INC-1 monitoring error rate back under 0.1%"); r.Incident.Status != incidents.Monitoring {
		t.Errorf("with a status: %+v", r.Incident.Status)
	}
	if r := f.ok(t, "", "update INC-1 resolved soon, we hope"); r.Incident.Status != incidents.Monitoring || !r.Incident.Open() {
		t.Errorf("resolved is not an update's status: %+v", r.Incident)
	}
	if r := f.do(t, "", "update INC-1"); !r.Error || !strings.Contains(r.Text, "give the update") {
		t.Errorf("no message: %+v", r)
	}
	if r := f.do(t, "", "status INC-1 monitoring"); !r.Error || !strings.Contains(r.Text, "give a message to post an update") {
		t.Errorf("the same status without a message: %+v", r)
	}
	tl := strings.Join(f.ok(t, "", "timeline INC-1").Lines, "\n")
	if !strings.Contains(tl, "update (investigating): rolling back 3.2.0") || !strings.Contains(tl, "status investigating → monitoring: error rate back under 0.1%") {
		t.Errorf("timeline:\n%s", tl)
	}
	if inc, _ := f.store.Get(ctx, 1); inc.LastUpdateAt.IsZero() || inc.Nudges != 0 {
		t.Errorf("the update did not reset the nudges: %+v", inc)
	}
}
