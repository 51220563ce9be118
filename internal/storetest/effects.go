package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Durable is a store with the outbox and the inbox: the one Sitrep runs on.
type Durable interface {
	incidents.Store
	incidents.Outbox
	incidents.Inbox
}

// Subscriptions are the contract's consumers: "echo" does every status
// change and resolution; "header" coalesces every change.
var Subscriptions = []incidents.Subscription{
	{Consumer: "echo", Events: func(_ *incidents.Incident, ev incidents.Event) bool {
		return ev.Kind == incidents.EventStatusChanged || ev.Kind == incidents.EventResolved
	}},
	{Consumer: "header", Changes: func(*incidents.Incident, incidents.Event) bool { return true }},
}

// RunDurable runs the outbox and inbox contract against the stores open
// returns, each opened with Subscriptions.
func RunDurable(t *testing.T, open func(t *testing.T) Durable) {
	t.Run("EffectsWithTheirChange", func(t *testing.T) { effectsWithTheirChange(t, open(t)) })
	t.Run("Inbox", func(t *testing.T) { inbox(t, open(t)) })
}

func effectsWithTheirChange(t *testing.T, s Durable) {
	changed := s.OutboxChanged()
	declare(t, s, "x", incidents.P2, t0)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("OutboxChanged not closed by a write of effects")
	}
	status := func(st incidents.Status) {
		t.Helper()
		if _, _, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
			return inc.ChangeStatus(st, "msg", alice, t0)
		}); err != nil {
			t.Fatal(err)
		}
	}
	status(incidents.Identified)
	status(incidents.Monitoring)
	echo, err := s.Pending(ctx, "echo")
	if err != nil || len(echo) != 2 || echo[0].Event == nil || echo[0].Event.To != "identified" || echo[1].Event.To != "monitoring" || echo[0].Seq >= echo[1].Seq {
		t.Fatalf("echo effects %+v %v", echo, err)
	}
	header, err := s.Pending(ctx, "header")
	if err != nil || len(header) != 1 || !header[0].Changed() || header[0].Rev < 3 {
		t.Fatalf("header effects %+v %v (one, coalesced)", header, err)
	}
	// progress is saved; a finished effect goes; a coalesced one marked again while it ran stays
	e := echo[0]
	e.Attempts, e.Progress = 2, map[string]string{"room": "1.1"}
	if err := s.SaveEffect(ctx, e); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Pending(ctx, "echo"); again[0].Attempts != 2 || again[0].Progress["room"] != "1.1" {
		t.Errorf("saved %+v", again[0])
	}
	if err := s.FinishEffect(ctx, e); err != nil {
		t.Fatal(err)
	}
	h := header[0]
	status(incidents.Identified) // marks the header again while "it runs"
	if err := s.FinishEffect(ctx, h); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Pending(ctx, "header"); len(left) != 1 {
		t.Errorf("a header marked again was removed: %+v", left)
	} else if err := s.FinishEffect(ctx, left[0]); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Pending(ctx, "header"); len(left) != 0 {
		t.Errorf("a finished header is pending: %+v", left)
	}
	if left, _ := s.Pending(ctx, "echo"); len(left) != 2 {
		t.Errorf("echo left %d, want 2", len(left))
	}
	// AddEffect keeps what is pending, and adds what is not
	if err := s.AddEffect(ctx, incidents.Effect{Consumer: "echo", Incident: 1, Seq: incidents.AdapterSeq + 1, Progress: map[string]string{"file": "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEffect(ctx, incidents.Effect{Consumer: "echo", Incident: 1, Seq: incidents.AdapterSeq + 1, Progress: map[string]string{"file": "y"}}); err != nil {
		t.Fatal(err)
	}
	left, _ := s.Pending(ctx, "echo")
	if last := left[len(left)-1]; last.Seq != incidents.AdapterSeq+1 || last.Progress["file"] != "x" || last.Event != nil {
		t.Errorf("adapter effect %+v", last)
	}
}

func inbox(t *testing.T, s Durable) {
	base := uint64(time.Now().UnixNano())
	for i, id := range []string{"E1", "E2", "E1", ""} {
		dup, err := s.Receive(ctx, incidents.Envelope{Key: base + uint64(i), Source: "slack", ID: id, Type: "slash_commands", Payload: []byte(fmt.Sprint(i))})
		if err != nil || dup != (i == 2) {
			t.Fatalf("receive %d %q: dup %v %v", i, id, dup, err)
		}
	}
	got, err := s.Unprocessed(ctx, "slack")
	if err != nil || len(got) != 3 || got[0].ID != "E1" || got[1].ID != "E2" || got[2].ID != "" || got[0].Key != base {
		t.Fatalf("unprocessed %+v %v", got, err)
	}
	if other, _ := s.Unprocessed(ctx, "teams"); len(other) != 0 {
		t.Errorf("another source's: %+v", other)
	}
	if err := s.Processed(ctx, got[0].Key); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Unprocessed(ctx, "slack"); len(left) != 2 {
		t.Errorf("after processing one: %d", len(left))
	}
	if dup, _ := s.Receive(ctx, incidents.Envelope{Key: base + 9, Source: "slack", ID: "E1"}); !dup {
		t.Error("a processed envelope's redelivery was taken again")
	}
}

// Importing is a store that takes copied incidents.
type Importing interface {
	incidents.Store
	incidents.Importer
}

// RunImport checks what a copy must keep: ids, timelines, and the link
// index as it was — a merged duplicate's alert group stays with the
// survivor, whichever of the two is copied first.
func RunImport(t *testing.T, open func(t *testing.T) Importing) {
	for _, order := range [][]int64{{1, 2}, {2, 1}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			s := open(t)
			at := t0
			byID := map[int64]*incidents.Incident{
				1: {ID: 1, Title: "survivor", Status: incidents.Investigating, Severity: incidents.P2, DeclaredAt: at, AckClock: at, UpdatedAt: at,
					Aliases: []incidents.Link{{System: "alertmanager", Ref: "G"}}, Links: map[string]string{"alertmanager": "H"}},
				2: {ID: 2, Title: "dup", Status: incidents.Resolved, Severity: incidents.P2, DeclaredAt: at, AckClock: at, UpdatedAt: at, ResolvedAt: at,
					MergedInto: 1, MergedAt: at, Links: map[string]string{"alertmanager": "G"}},
			}
			for _, id := range order {
				ev := incidents.Event{Incident: id, Seq: 1, Kind: incidents.EventDeclared, At: at, Message: byID[id].Title}
				if err := s.Import(ctx, byID[id], []incidents.Event{ev}); err != nil {
					t.Fatal(err)
				}
			}
			if id, err := s.ByLink(ctx, "alertmanager", "G"); err != nil || id != 1 {
				t.Errorf("the merged group → %d %v, want the survivor", id, err)
			}
			if id, _ := s.ByLink(ctx, "alertmanager", "H"); id != 1 {
				t.Errorf("the survivor's own group → %d", id)
			}
			inc := declare(t, s, "next", incidents.P3, at)
			if inc.ID != 3 || count(t, s, 2) != 1 {
				t.Errorf("after the copy: next id %d, INC-2's timeline %d", inc.ID, count(t, s, 2))
			}
		})
	}
}
