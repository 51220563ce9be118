package commands_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

func (f *fixture) as(tb testing.TB, who, text string) commands.Reply {
	tb.Helper()
	return f.router.Handle(ctx, commands.Request{Actor: incidents.Actor{Name: who, Source: incidents.SourceConsole}, Text: text})
}

// TestPrivateIncidents: a private incident is seen and changed only by the
// people it names and those invited; to anyone else it is not listed and
// every command on it is refused without a word of what it is.
func TestPrivateIncidents(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P3 slow search")
	r := f.ok(t, "", "declare --private P1 Customer data exposed in export")
	if inc := r.Incident; inc == nil || !inc.Private || inc.Title != "Customer data exposed in export" || inc.Severity != incidents.P1 {
		t.Fatalf("private: %+v", r.Incident)
	}
	if !strings.Contains(r.Text, "INC-2 · 🔒 Customer data exposed") {
		t.Errorf("card %q", r.Text)
	}
	if l := strings.Join(f.ok(t, "", "list").Lines, "\n"); !strings.Contains(l, "🔒 Customer data") {
		t.Errorf("alice's list lacks her private incident:\n%s", l)
	}
	bob := f.as(t, "@bob", "list")
	if l := bob.Text + strings.Join(bob.Lines, "\n"); strings.Contains(l, "Customer") || strings.Contains(l, "INC-2") || !strings.Contains(l, "INC-1") {
		t.Errorf("bob's list shows the private incident, or not the public one:\n%s", l)
	}
	for _, cmd := range []string{"show 2", "timeline 2", "note 2 I saw it", "ack 2", "postmortem 2", "resolve 2", "invite 2 @bob", "link 1 INC-2", "severity 2 P4"} {
		out := f.as(t, "@bob", cmd)
		if !out.Error || !strings.Contains(out.Text, "INC-2 is private") || strings.Contains(out.Text, "Customer") {
			t.Errorf("bob %q: %v %q", cmd, out.Error, out.Text)
		}
	}
	if miss := f.as(t, "@bob", "ack"); strings.Contains(miss.Text, "INC-2") {
		t.Errorf("the which-incident hint names the private one: %q", miss.Text)
	}
	f.ok(t, "", "invite 2 @bob @carol")
	if out := f.as(t, "bob", "note 2 checked the export job"); out.Error {
		t.Fatalf("invited bob refused: %s", out.Text)
	}
	if l := strings.Join(f.as(t, "@carol", "list").Lines, "\n"); !strings.Contains(l, "INC-2") {
		t.Errorf("invited carol does not see it:\n%s", l)
	}
	if out := f.as(t, "@dave", "show 2"); !out.Error {
		t.Errorf("dave sees it: %q", out.Text)
	}
	if again := f.do(t, "", "invite 2 @bob"); !again.Error || !strings.Contains(again.Text, "already has everyone") {
		t.Errorf("invite again: %q", again.Text)
	}
	// the card names who was invited, and a Slack mention is the same person with or without its label
	if c := f.ok(t, "", "show 2"); !strings.Contains(fieldsOf(c), "Invited: @bob, @carol") {
		t.Errorf("card: %s", fieldsOf(c))
	}
	if !incidents.SamePerson("<@U123|dana>", "<@u123>") || incidents.SamePerson("@ann", "@anna") || incidents.SamePerson("", "") {
		t.Error("SamePerson")
	}
}

func fieldsOf(r commands.Reply) string {
	var b strings.Builder
	for _, f := range r.Fields {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	return b.String()
}

// TestMergeAndLink: merge resolves the duplicate with a link both ways,
// moves its alert and page links to the survivor (the link index finds the
// survivor), invites its people, and refuses what would mix a drill or a
// private incident with another; link records a relation on both.
func TestMergeAndLink(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 Checkout errors")
	// INC-2 as an alert made it: linked to an Alertmanager group and a PagerDuty incident
	res, err := f.store.Apply(ctx, incidents.Write{Link: incidents.Link{System: "alertmanager", Ref: "{}:{alertname=\"HighErrorRate\"}"}, Create: func() (*incidents.Incident, []incidents.Event, error) {
		return incidents.Declare(incidents.Declaration{Title: "HighErrorRate on checkout", Links: map[string]string{"alertmanager": "{}:{alertname=\"HighErrorRate\"}", "pagerduty": "PABC123"}}, incidents.Actor{Name: "Alertmanager", Source: incidents.SourceAlertmanager}, t0)
	}})
	if err != nil || res.Incident.ID != 2 {
		t.Fatal(res, err)
	}
	f.as(t, "@bob", "ack 2")
	f.clock.Advance(time.Minute)

	for cmd, want := range map[string]string{
		"merge 2":           "say which incident it duplicates",
		"merge 2 into 2":    "cannot be merged into itself",
		"merge 2 into 9":    "no incident INC-9",
		"merge 2 into nope": "not an incident id",
	} {
		if out := f.do(t, "", cmd); !out.Error || !strings.Contains(out.Text, want) {
			t.Errorf("%q: %q, want %q", cmd, out.Text, want)
		}
	}
	preview := f.ok(t, "", "merge INC-2 into INC-1")
	if len(preview.Buttons) != 1 || preview.Buttons[0].Command != "merge INC-2 into INC-1 --confirm" || preview.Buttons[0].Confirm == "" || !strings.Contains(preview.Text, "cannot be reopened") {
		t.Fatalf("preview %+v", preview)
	}
	if dup, _ := f.store.Get(ctx, 2); dup.MergedInto != 0 {
		t.Fatal("the preview merged")
	}
	out := f.ok(t, "", preview.Buttons[0].Command)
	if !strings.Contains(out.Text, "INC-2 merged into INC-1") || !strings.Contains(out.Text, "alerts and pages land on INC-1") {
		t.Errorf("merge: %q", out.Text)
	}
	dup, _ := f.store.Get(ctx, 2)
	into, _ := f.store.Get(ctx, 1)
	if dup.Open() || dup.MergedInto != 1 || !strings.Contains(dup.Summary, "Duplicate of INC-1") || len(into.Duplicates) != 1 || into.Duplicates[0] != 2 {
		t.Fatalf("dup %+v\ninto %+v", dup, into)
	}
	for _, l := range []incidents.Link{{System: "alertmanager", Ref: "{}:{alertname=\"HighErrorRate\"}"}, {System: "pagerduty", Ref: "PABC123"}} {
		if id, err := f.store.ByLink(ctx, l.System, l.Ref); err != nil || id != 1 {
			t.Errorf("%s %s → %d %v, want INC-1", l.System, l.Ref, id, err)
		}
	}
	if !slicesContain(into.Members, "@bob") {
		t.Errorf("the duplicate's responder is not invited to the survivor: %q", into.Members)
	}
	if c := fieldsOf(f.ok(t, "", "show 2")); !strings.Contains(c, "Merged into: INC-1") {
		t.Errorf("dup card: %s", c)
	}
	if c := fieldsOf(f.ok(t, "", "show 1")); !strings.Contains(c, "Duplicates: INC-2") {
		t.Errorf("survivor card: %s", c)
	}
	if tl := strings.Join(f.ok(t, "", "timeline 1").Lines, "\n"); !strings.Contains(tl, "INC-2 (HighErrorRate on checkout) merged into this incident") {
		t.Errorf("survivor timeline:\n%s", tl)
	}
	for cmd, want := range map[string]string{
		"reopen 2":        "merged into INC-1 as a duplicate: work there",
		"merge 2 into 1":  "INC-2 was merged into INC-1 as a duplicate: work there",
		"merge 1 into 2":  "INC-2 was itself merged into INC-1",
		"resolve 2":       "INC-2 was merged into INC-1 as a duplicate: work there",
		"severity 2 P1":   "INC-2 was merged into INC-1 as a duplicate: work there",
		"lead 2 @carol":   "INC-2 was merged into INC-1 as a duplicate: work there",
		"invite 2 @carol": "INC-2 was merged into INC-1 as a duplicate: work there",
	} {
		if out := f.do(t, "", cmd); !out.Error || !strings.Contains(out.Text, want) {
			t.Errorf("%q: %q, want %q", cmd, out.Text, want)
		}
	}
	f.ok(t, "", "declare --drill P2 Game day")
	f.ok(t, "", "declare --private P2 Secret")
	if out := f.do(t, "", "merge 3 into 1"); !out.Error || !strings.Contains(out.Text, "not both drills") {
		t.Errorf("drill merge: %q", out.Text)
	}
	if out := f.do(t, "", "merge 4 into 1"); !out.Error || !strings.Contains(out.Text, "not both private") {
		t.Errorf("private merge: %q", out.Text)
	}

	// link: both sides, once; a private one is named without its title to the other
	if out := f.ok(t, "", "link 1 INC-4"); !strings.Contains(out.Text, "INC-1 is linked to INC-4") {
		t.Errorf("link: %q", out.Text)
	}
	if out := f.do(t, "", "link 4 1"); !out.Error || !strings.Contains(out.Text, "already linked") {
		t.Errorf("link again: %q", out.Text)
	}
	if tl := strings.Join(f.as(t, "@bob", "timeline 1").Lines, "\n"); !strings.Contains(tl, "Linked to INC-4 (private)") || strings.Contains(tl, "Secret") {
		t.Errorf("public timeline names the private one:\n%s", tl)
	}
	if c := fieldsOf(f.ok(t, "", "show 4")); !strings.Contains(c, "Related: INC-1") {
		t.Errorf("linked card: %s", c)
	}
	// the survivor answers for the worse severity; an alert's declarer is not invited as a person
	f.ok(t, "", "declare P1 API down everywhere")
	f.ok(t, "", "declare P3 api slow")
	f.ok(t, "", "merge 5 into 6 --confirm")
	if inc, _ := f.store.Get(ctx, 6); inc.Severity != incidents.P1 || !strings.Contains(inc.SeverityReason, "merged INC-5, a P1") {
		t.Errorf("survivor %s: %s", inc.Severity, inc.SeverityReason)
	}
	if slicesContain(into.Members, "Alertmanager") {
		t.Errorf("invited %q", into.Members)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestMergedDuplicateRoomIsArchivedAfterTheGrace: a merged duplicate gets
// no postmortem reminders; its war room's archive falls due MergeGrace after
// the merge, once, through the reminder schedule (so a restart loses nothing).
func TestMergedDuplicateRoomIsArchivedAfterTheGrace(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P4 one") // P4: no update nudges to count
	f.ok(t, "", "declare P4 two")
	svc := incidents.NewService(incidents.Config{Store: f.store, Clock: f.clock})
	if _, _, err := svc.Change(ctx, 2, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.OpenWarRoom("C2", "inc-2-two", "1.0", incidents.System, now)
	}); err != nil {
		t.Fatal(err)
	}
	f.ok(t, "", "ack 1")
	f.ok(t, "", "merge 2 into 1 --confirm")
	f.clock.Advance(incidents.ArchiveGrace() - time.Second)
	if n, _, err := svc.RemindDue(ctx); err != nil || n != 0 {
		t.Fatalf("before the grace: %d %v", n, err)
	}
	f.clock.Advance(2 * time.Second)
	if n, _, err := svc.RemindDue(ctx); err != nil || n != 1 {
		t.Fatalf("after the grace: %d %v", n, err)
	}
	var archived int
	f.store.Timeline(ctx, 2, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventRoomArchived {
			archived++
		}
		if ev.Kind == incidents.EventReminder {
			t.Errorf("a duplicate got a reminder: %s", ev.Message)
		}
		return nil
	})
	f.clock.Advance(30 * 24 * time.Hour)
	svc.RemindDue(ctx)
	if archived != 1 {
		t.Errorf("%d archive events", archived)
	}
	if inc, _ := f.store.Get(ctx, 2); inc.FollowUps[0] != "archive" {
		t.Errorf("follow ups %q", inc.FollowUps)
	}
}

// TestPostmortemLink records the written postmortem and reaches Document.
func TestPostmortemLink(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 one")
	for _, bad := range []string{"postmortem 1 link", "postmortem 1 link javascript:alert(1)", "postmortem 1 link https://x/<script>"} {
		if out := f.do(t, "", bad); !out.Error {
			t.Errorf("%q accepted", bad)
		}
	}
	out := f.ok(t, "", "postmortem 1 link https://docs.example.com/pm/1")
	if out.Incident.PostmortemURL != "https://docs.example.com/pm/1" || out.Incident.Phase != incidents.Document {
		t.Errorf("%+v", out.Incident)
	}
}

// TestSurvivorsPostmortemHasTheDuplicatesEvents: the survivor's postmortem
// timeline holds its duplicate's events too, marked with its id, all in time
// order, across timeline pages (streamed, never read whole).
func TestSurvivorsPostmortemHasTheDuplicatesEvents(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 Checkout errors")
	f.clock.Advance(time.Minute)
	f.ok(t, "", "declare P2 Payments errors")
	const notes = 700 // more than a timeline page
	if _, _, err := f.store.Update(ctx, 2, func(inc *incidents.Incident) ([]incidents.Event, error) {
		var evs []incidents.Event
		for i := range notes {
			ev, _ := inc.Record(incidents.EventNote, fmt.Sprintf("payments note %d", i), nil, alice, t0.Add(time.Minute+time.Duration(i)*time.Second))
			evs = append(evs, ev...)
		}
		return evs, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Minute) // within the duplicate's notes
	f.ok(t, "", "note 1 checkout note while payments went on")
	f.clock.Advance(time.Hour)
	f.ok(t, "", "merge 2 into 1 --confirm")
	total, ofDup := f.events(t, 1)+f.events(t, 2), f.events(t, 2) // before the export records itself
	pm := string(f.ok(t, "", "postmortem 1").File.Content)
	if !strings.Contains(pm, "| Duplicates | INC-2") {
		t.Errorf("head lacks the duplicate:\n%.2000s", pm)
	}
	_, tl, _ := strings.Cut(pm, "## Timeline")
	var last string
	rows, dup := 0, 0
	for _, line := range strings.Split(tl, "\n") {
		if !strings.HasPrefix(line, "| 2026-") {
			continue
		}
		rows++
		at := line[2:21]
		if at < last {
			t.Fatalf("out of order: %s after %s", at, last)
		}
		last = at
		if strings.Contains(line, "(INC-2)") {
			dup++
		}
	}
	if rows != total || dup != ofDup {
		t.Errorf("%d rows (%d of INC-2), want %d (%d)", rows, dup, total, ofDup)
	}
	if !strings.Contains(tl, "checkout note while payments went on") {
		t.Error("the survivor's own note is missing")
	}
}

// TestPrivateIncidentsKeepTheirPeople: a lead who hands over, and whoever
// acknowledged before a reopening, can still see the private incident;
// a message's private incident is not shown to someone declaring from it.
func TestPrivateIncidentsKeepTheirPeople(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare --private P2 breach")
	f.ok(t, "", "invite 1 @bob")
	if out := f.as(t, "@bob", "ack 1"); out.Error {
		t.Fatal(out.Text)
	}
	f.ok(t, "", "lead 1 @carol")
	f.ok(t, "", "resolve 1")
	f.ok(t, "", "reopen 1")
	for _, who := range []string{"@alice", "@bob", "@carol"} {
		if out := f.as(t, who, "show 1"); out.Error {
			t.Errorf("%s lost access: %s", who, out.Text)
		}
	}
	if out := f.as(t, "@dave", "show 1"); !out.Error {
		t.Error("dave sees it")
	}
	// the answer to a change of a private incident asked from elsewhere is for the asker alone
	if out := f.as(t, "@bob", "note 1 checked"); !out.Private {
		t.Error("a reply about a private incident is public")
	}
	if out := f.ok(t, "", "severity 1 P1 worse"); !out.Private {
		t.Error("a change reply about a private incident is public")
	}
}

// TestMergeOfAMergedSurvivor: A merged into B, then B into C: C's
// postmortem holds A's events too.
func TestMergeOfAMergedSurvivor(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 first report")
	f.ok(t, "", "declare P2 second report")
	f.ok(t, "", "declare P2 the incident")
	f.ok(t, "", "merge 1 into 2 --confirm")
	f.ok(t, "", "merge 2 into 3 --confirm")
	pm := string(f.ok(t, "", "postmortem 3").File.Content)
	if !strings.Contains(pm, "(INC-1) first report") || !strings.Contains(pm, "(INC-2) second report") {
		t.Errorf("postmortem of INC-3:\n%s", pm)
	}
}
