package incidents

import (
	"testing"
	"time"
)

func TestActionItems(t *testing.T) {
	inc := acked(t)
	at := t0.Add(time.Hour)
	if _, err := inc.AddAction("add an alert on pool saturation", "<@U2>", bob, at); err != nil {
		t.Fatal(err)
	}
	inc.AddAction("write the db failover runbook", "", bob, at)
	if len(inc.Actions) != 2 || inc.Actions[1].ID != 2 || inc.Actions[0].Owner != "<@U2>" || inc.Actions[0].State() != "open" {
		t.Fatalf("actions %+v", inc.Actions)
	}
	events, err := inc.CompleteAction(1, bob, at)
	if err != nil || events[0].Kind != EventActionDone || !inc.Actions[0].Done {
		t.Fatalf("complete: %v %+v", err, events)
	}
	for _, tc := range []struct {
		id   int
		code string
	}{{1, EConflict}, {0, EInvalid}, {3, EInvalid}} {
		if _, err := inc.CompleteAction(tc.id, bob, at); ErrorCode(err) != tc.code {
			t.Errorf("CompleteAction(%d): %v, want %s", tc.id, err, tc.code)
		}
	}
	if _, err := inc.AddAction("  ", "", bob, at); ErrorCode(err) != EInvalid {
		t.Errorf("empty action: %v", err)
	}
}

func TestFollowUpsAfterResolution(t *testing.T) {
	inc := resolved(t) // resolved at t0+1h
	resolvedAt := inc.ResolvedAt
	if due, ok := inc.NextReminder(); !ok || !due.Equal(resolvedAt.Add(DocumentAfter)) {
		t.Fatalf("postmortem reminder due %v %v", due, ok)
	}
	if _, ok := inc.Remind(resolvedAt.Add(time.Hour)); ok {
		t.Error("reminded before the postmortem was due")
	}
	events, ok := inc.Remind(resolvedAt.Add(DocumentAfter))
	if !ok || events[0].Fields["about"] != "document" {
		t.Fatalf("postmortem reminder %+v", events)
	}
	if _, ok := inc.Remind(resolvedAt.Add(2 * DocumentAfter)); ok {
		t.Error("the postmortem reminder came twice")
	}
	docAt := resolvedAt.Add(30 * time.Hour)
	events, _ = inc.MarkPostmortem("md", bob, docAt)
	if inc.Phase != Document || len(events) != 2 {
		t.Fatalf("after the export: phase %s, events %+v", inc.Phase, events)
	}
	if due, ok := inc.NextReminder(); !ok || !due.Equal(docAt.Add(ReviewAfter)) {
		t.Fatalf("review reminder due %v %v", due, ok)
	}
	if events, ok := inc.Remind(docAt.Add(ReviewAfter)); !ok || events[0].Fields["about"] != "review" {
		t.Fatalf("review reminder %+v", events)
	}
	inc.ReachPhase(Review, bob, docAt.Add(4*24*time.Hour))
	if _, ok := inc.NextReminder(); ok {
		t.Error("a reminder is still pending after the review")
	}
}
