package incidents

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	alice = Actor{Name: "@alice", Source: SourceConsole}
	bob   = Actor{Name: "@bob", Source: SourceSlack}
)

func declared(t *testing.T, sev Severity) *Incident {
	t.Helper()
	inc, _, err := Declare(Declaration{Title: "Checkout error rate above 5%", Signals: Signals{Explicit: sev}}, alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	inc.ID = 1
	return inc
}

func acked(t *testing.T) *Incident {
	inc := declared(t, P2)
	if _, err := inc.Ack(bob, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return inc
}

func resolved(t *testing.T) *Incident {
	inc := acked(t)
	if _, err := inc.Resolve("rolled back", bob, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return inc
}

func kinds(events []Event) []EventKind {
	out := make([]EventKind, len(events))
	for i, e := range events {
		out[i] = e.Kind
	}
	return out
}

func TestDeclare(t *testing.T) {
	inc, events, err := Declare(Declaration{Title: "  API   completely unavailable "}, alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Title != "API completely unavailable" || inc.Severity != P1 || inc.Status != Investigating || inc.Phase != Detect {
		t.Errorf("declared %+v", inc)
	}
	if inc.Lead() != "@alice" || !inc.AckDeadline().Equal(t0.Add(5*time.Minute)) {
		t.Errorf("lead %q deadline %s", inc.Lead(), inc.AckDeadline())
	}
	if got := kinds(events); !reflect.DeepEqual(got, []EventKind{EventDeclared, EventRoleAssigned}) {
		t.Errorf("events %v", got)
	}
	// An integration declares without making itself lead.
	inc, events, _ = Declare(Declaration{Title: "HighErrorRate"}, Actor{Name: "PagerDuty", Source: "pagerduty"}, t0)
	if inc.Lead() != "" || len(events) != 1 {
		t.Errorf("pagerduty declaration lead %q events %v", inc.Lead(), kinds(events))
	}
	for _, title := range []string{"", "   "} {
		if _, _, err := Declare(Declaration{Title: title}, alice, t0); ErrorCode(err) != EInvalid {
			t.Errorf("Declare(%q) err = %v, want invalid", title, err)
		}
	}
	// A long title (an alert summary) is not refused: shown cut at a rune
	// boundary, kept whole on the timeline.
	long := strings.Repeat("é", MaxTitle+50)
	inc, events, err = Declare(Declaration{Title: long}, Actor{Name: "Alertmanager", Source: "alertmanager"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(inc.Title)); n != MaxTitle || !strings.HasSuffix(inc.Title, "é…") || events[0].Message != long {
		t.Errorf("a long title: %d runes %q…, event keeps %d runes", n, inc.Title[len(inc.Title)-10:], len([]rune(events[0].Message)))
	}
}

func TestTransitions(t *testing.T) {
	at := t0.Add(10 * time.Minute)
	tests := []struct {
		name    string
		start   func(*testing.T) *Incident
		do      func(*Incident) ([]Event, error)
		want    []EventKind // events, when it succeeds
		wantErr string      // error code, when it fails
		check   func(*testing.T, *Incident)
	}{
		{"ack", func(t *testing.T) *Incident { return declared(t, P2) }, func(i *Incident) ([]Event, error) { return i.Ack(bob, at) },
			[]EventKind{EventAcknowledged, EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if !i.Acked() || i.AckedBy != "@bob" || i.Phase != Acknowledge || i.Lead() != "@alice" {
					t.Errorf("after ack: %+v", i)
				}
			}},
		{"ack without lead makes the acker lead", func(t *testing.T) *Incident {
			i, _, _ := Declare(Declaration{Title: "x"}, Actor{Name: "am", Source: "alertmanager"}, t0)
			return i
		}, func(i *Incident) ([]Event, error) { return i.Ack(bob, at) },
			[]EventKind{EventAcknowledged, EventRoleAssigned, EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if i.Lead() != "@bob" {
					t.Errorf("lead %q", i.Lead())
				}
			}},
		{"ack twice", acked, func(i *Incident) ([]Event, error) { return i.Ack(alice, at) }, nil, EConflict, nil},
		{"ack resolved", resolved, func(i *Incident) ([]Event, error) { return i.Ack(alice, at) }, nil, EConflict, nil},
		{"late ack says how late", func(t *testing.T) *Incident { return declared(t, P1) }, func(i *Incident) ([]Event, error) { return i.Ack(bob, at) },
			[]EventKind{EventAcknowledged, EventPhaseReached}, "", nil},
		{"severity up", acked, func(i *Incident) ([]Event, error) { return i.ChangeSeverity(P1, "all regions", bob, at) },
			[]EventKind{EventSeverityChanged, EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if i.Severity != P1 || i.SeverityReason != "all regions" || i.Phase != Assess {
					t.Errorf("after severity: %s %q %s", i.Severity, i.SeverityReason, i.Phase)
				}
			}},
		{"severity same", acked, func(i *Incident) ([]Event, error) { return i.ChangeSeverity(P2, "", bob, at) }, nil, EConflict, nil},
		{"severity invalid", acked, func(i *Incident) ([]Event, error) { return i.ChangeSeverity(Severity(9), "", bob, at) }, nil, EInvalid, nil},
		{"severity on resolved is allowed", resolved, func(i *Incident) ([]Event, error) { return i.ChangeSeverity(P3, "less than thought", bob, at) },
			[]EventKind{EventSeverityChanged}, "", nil},
		{"status identified", acked, func(i *Incident) ([]Event, error) { return i.ChangeStatus(Identified, "bad deploy", bob, at) },
			[]EventKind{EventStatusChanged, EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if i.Status != Identified || i.Phase != Remediate {
					t.Errorf("after identified: %s %s", i.Status, i.Phase)
				}
			}},
		{"status monitoring", acked, func(i *Incident) ([]Event, error) { return i.ChangeStatus(Monitoring, "", bob, at) },
			[]EventKind{EventStatusChanged, EventPhaseReached}, "", nil},
		{"status back to investigating", func(t *testing.T) *Incident {
			i := acked(t)
			i.ChangeStatus(Monitoring, "", bob, at)
			return i
		}, func(i *Incident) ([]Event, error) { return i.ChangeStatus(Investigating, "it came back", bob, at) },
			[]EventKind{EventStatusChanged}, "", func(t *testing.T, i *Incident) {
				if i.Phase != Verify {
					t.Errorf("phase moved back to %s", i.Phase)
				}
			}},
		{"status same", acked, func(i *Incident) ([]Event, error) { return i.ChangeStatus(Investigating, "", bob, at) }, nil, EConflict, nil},
		{"status resolved resolves", acked, func(i *Incident) ([]Event, error) { return i.ChangeStatus(Resolved, "done", bob, at) },
			[]EventKind{EventResolved, EventPhaseReached}, "", nil},
		{"status on resolved", resolved, func(i *Incident) ([]Event, error) { return i.ChangeStatus(Monitoring, "", bob, at) }, nil, EConflict, nil},
		{"assign comms", acked, func(i *Incident) ([]Event, error) { return i.AssignRole(Comms, "@carol", bob, at) },
			[]EventKind{EventRoleAssigned}, "", func(t *testing.T, i *Incident) {
				if i.Holder(Comms) != "@carol" || i.Lead() != "@alice" {
					t.Errorf("roles %+v", i.Roles)
				}
			}},
		{"replace lead", acked, func(i *Incident) ([]Event, error) { return i.AssignRole(Commander, "@dave", bob, at) },
			[]EventKind{EventRoleAssigned}, "", func(t *testing.T, i *Incident) {
				if i.Lead() != "@dave" || len(i.Roles) != 1 {
					t.Errorf("roles %+v", i.Roles)
				}
			}},
		{"assign same holder", acked, func(i *Incident) ([]Event, error) { return i.AssignRole(Commander, "@alice", bob, at) }, nil, EConflict, nil},
		{"assign nobody", acked, func(i *Incident) ([]Event, error) { return i.AssignRole(Scribe, " ", bob, at) }, nil, EInvalid, nil},
		{"note", acked, func(i *Incident) ([]Event, error) { return i.AddNote("pods OOMKilled", bob, at) }, []EventKind{EventNote}, "", nil},
		{"note on resolved", resolved, func(i *Incident) ([]Event, error) { return i.AddNote("root cause: pool size", bob, at) }, []EventKind{EventNote}, "", nil},
		{"empty note", acked, func(i *Incident) ([]Event, error) { return i.AddNote("  ", bob, at) }, nil, EInvalid, nil},
		{"huge note", acked, func(i *Incident) ([]Event, error) { return i.AddNote(strings.Repeat("a", MaxStored+1), bob, at) }, []EventKind{EventNote}, "", nil},
		{"phase next", acked, func(i *Incident) ([]Event, error) { return i.ReachPhase("", bob, at) },
			[]EventKind{EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if i.Phase != Assess || len(i.Phases) != 3 {
					t.Errorf("phases %+v", i.Phases)
				}
			}},
		{"phase jump", acked, func(i *Incident) ([]Event, error) { return i.ReachPhase(Communicate, bob, at) },
			[]EventKind{EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if _, ok := i.Reached(Assess); ok {
					t.Error("a skipped phase is marked reached")
				}
			}},
		{"phase backwards", acked, func(i *Incident) ([]Event, error) { return i.ReachPhase(Detect, bob, at) }, nil, EConflict, nil},
		{"phase past review", func(t *testing.T) *Incident {
			i := resolved(t)
			i.ReachPhase(Review, bob, at)
			return i
		}, func(i *Incident) ([]Event, error) { return i.ReachPhase("", bob, at) }, nil, EConflict, nil},
		{"phase unknown", acked, func(i *Incident) ([]Event, error) { return i.ReachPhase("party", bob, at) }, nil, EInvalid, nil},
		{"resolve", acked, func(i *Incident) ([]Event, error) { return i.Resolve("rolled back to 3.1.0", bob, at) },
			[]EventKind{EventResolved, EventPhaseReached}, "", func(t *testing.T, i *Incident) {
				if i.Open() || i.Summary != "rolled back to 3.1.0" || !i.ResolvedAt.Equal(at) {
					t.Errorf("after resolve: %+v", i)
				}
			}},
		{"resolve resolved", resolved, func(i *Incident) ([]Event, error) { return i.Resolve("", bob, at) }, nil, EConflict, nil},
		{"reopen", resolved, func(i *Incident) ([]Event, error) { return i.Reopen("errors are back", bob, at) },
			[]EventKind{EventReopened}, "", func(t *testing.T, i *Incident) {
				if !i.Open() || i.Acked() || !i.AckClock.Equal(at) || i.Reminders != 0 || !i.ResolvedAt.IsZero() {
					t.Errorf("after reopen: %+v", i)
				}
			}},
		{"reopen open", acked, func(i *Incident) ([]Event, error) { return i.Reopen("", bob, at) }, nil, EConflict, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := tt.start(t)
			before := *inc
			before.Roles = append([]Holder(nil), inc.Roles...)
			before.Phases = append([]Mark(nil), inc.Phases...)
			events, err := tt.do(inc)
			if tt.wantErr != "" {
				if ErrorCode(err) != tt.wantErr || ErrorMessage(err) == "" {
					t.Fatalf("err = %v (code %s), want code %s", err, ErrorCode(err), tt.wantErr)
				}
				if !reflect.DeepEqual(&before, inc) || events != nil {
					t.Errorf("a refused transition changed the incident:\nbefore %+v\nafter  %+v", before, *inc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(events); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			for _, ev := range events {
				if !ev.At.Equal(at) || ev.Actor == "" || ev.Source == "" || ev.Incident != inc.ID {
					t.Errorf("event lacks time, actor, source or incident: %+v", ev)
				}
			}
			if tt.check != nil {
				tt.check(t, inc)
			}
		})
	}
}

type mapMemo map[string]string

func (m mapMemo) Get(key string) string       { return m[key] }
func (m mapMemo) Set(key, value string) error { m[key] = value; return nil }

// TestAlertSeenIsWhatObserveAlertIgnores: AlertSeen holds exactly when
// ObserveAlert would add nothing — the same fingerprint, status and start.
func TestAlertSeenIsWhatObserveAlertIgnores(t *testing.T) {
	inc, memo := declared(t, P2), mapMemo{}
	a := Alert{Fingerprint: "f1", Name: "HighErrorRate", Status: "firing", StartsAt: t0}
	if AlertSeen(a.Fingerprint, a.Status, a.StartsAt, memo) {
		t.Fatal("seen before it was observed")
	}
	if evs, _ := inc.ObserveAlert(a, memo, alice, t0); len(evs) != 1 {
		t.Fatalf("first observation: %d events", len(evs))
	}
	for _, c := range []struct {
		name string
		a    Alert
	}{
		{"the same", a},
		{"another fingerprint", Alert{Fingerprint: "f2", Name: a.Name, Status: a.Status, StartsAt: a.StartsAt}},
		{"resolved", Alert{Fingerprint: a.Fingerprint, Name: a.Name, Status: "resolved", StartsAt: a.StartsAt}},
		{"firing again, a later start", Alert{Fingerprint: a.Fingerprint, Name: a.Name, Status: a.Status, StartsAt: t0.Add(time.Hour)}},
		{"the same start in another zone", Alert{Fingerprint: a.Fingerprint, Name: a.Name, Status: a.Status, StartsAt: t0.In(time.FixedZone("CET", 3600))}},
	} {
		seen := AlertSeen(c.a.Fingerprint, c.a.Status, c.a.StartsAt, memo)
		probe := maps.Clone(memo)
		evs, _ := inc.Clone().ObserveAlert(c.a, probe, alice, t0)
		if seen != (len(evs) == 0) {
			t.Errorf("%s: AlertSeen %v, ObserveAlert added %d events", c.name, seen, len(evs))
		}
	}
}
