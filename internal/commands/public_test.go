package commands_test

import (
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// TestPublishPreviewsThenPublishes: publish shows what the public will
// read and publishes nothing until its Publish button (bound to that very
// text) is pressed; only the comms role or the lead may; drills and private
// incidents never go public; resolving says when the page still shows it.
func TestPublishPreviewsThenPublishes(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 checkout 5xx from the payment gateway")
	preview := f.ok(t, "", "publish 1 identified Some   payments fail;\n we are on it")
	if len(preview.Buttons) != 1 || preview.Buttons[0].Command != "publish INC-1 --confirm 0 identified Some payments fail;\nwe are on it" || preview.Buttons[0].Confirm == "" ||
		!strings.Contains(preview.Text, "nothing is public yet") || !strings.Contains(preview.Lines[0], "the internal title") || preview.Lines[1] != "IDENTIFIED · Partial outage" {
		t.Fatalf("preview %+v", preview)
	}
	if inc, _ := f.store.Get(ctx, 1); inc.Published() {
		t.Fatal("the preview published")
	}
	if out := f.as(t, "@bob", "publish 1 identified hello"); !out.Error || !strings.Contains(out.Text, "only @alice may publish") {
		t.Errorf("bob: %q", out.Text)
	}
	f.ok(t, "", "role 1 comms @bob")
	if out := f.as(t, "@bob", "publish 1 --title Checkout is failing for some cards"); out.Error {
		t.Fatalf("comms title: %q", out.Text)
	}
	if out := f.as(t, "@carol", "publish 1 --confirm 0 identified sneaky"); !out.Error || !strings.Contains(out.Text, "@bob (comms) or @alice") {
		t.Errorf("carol: %q", out.Text)
	}
	f.ok(t, "", preview.Buttons[0].Command)
	if again := f.do(t, "", preview.Buttons[0].Command); !again.Error || !strings.Contains(again.Text, "preview again") {
		t.Errorf("the same preview confirmed twice: %q", again.Text)
	}
	inc, _ := f.store.Get(ctx, 1)
	if st, _, _ := inc.PublicStatus(); st != incidents.Identified || len(inc.Public) != 1 || inc.Public[0].Message != "Some payments fail;\nwe are on it" || inc.PublicName() != "Checkout is failing for some cards" || inc.Public[0].Severity != incidents.P2 {
		t.Errorf("published %+v", inc.Public)
	}
	if inc.Phase.Index() < incidents.Communicate.Index() {
		t.Errorf("phase %s", inc.Phase)
	}
	// a card of an incident with a comms role offers the Publish button
	card := f.ok(t, "", "show 1")
	found := false
	for _, b := range card.Buttons {
		found = found || b.Command == "publish INC-1" && b.Form
	}
	if !found {
		t.Errorf("no Publish update button: %+v", card.Buttons)
	}
	if out := f.ok(t, "", "resolve 1 gateway fixed"); !strings.Contains(out.Text, "the status page still shows INC-1 IDENTIFIED: publish INC-1 resolved <message>") {
		t.Errorf("resolve: %q", out.Text)
	}
	p := f.ok(t, "", "publish 1 resolved Payments work again")
	f.ok(t, "", p.Buttons[0].Command)
	if out := f.do(t, "", "publish 1 --confirm 2 resolved again"); !out.Error || !strings.Contains(out.Text, "already resolved on the status page") {
		t.Errorf("resolved twice: %q", out.Text)
	}

	f.ok(t, "", "declare --drill P1 game day")
	f.ok(t, "", "declare --private P1 breach")
	for id, want := range map[string]string{"2": "a drill", "3": "private"} {
		if out := f.do(t, "", "publish "+id+" investigating hello"); !out.Error || !strings.Contains(out.Text, want) {
			t.Errorf("publish %s: %q", id, out.Text)
		}
	}
	if out := f.do(t, "", "publish 1 Title search is failing for some users"); out.Error || !strings.Contains(out.Text, "Preview") {
		t.Errorf("a message starting with Title: %q", out.Text)
	}
	for _, bad := range []string{"publish 1", "publish 1 identified", "publish 1 " + strings.Repeat("x", incidents.MaxPublicMessage+1), "publish 1 " + strings.Repeat("決", 400),
		"publish 1 --title", "publish 1 --confirm x identified y", "publish 1 --confirm --confirm x"} {
		if out := f.do(t, "", bad); !out.Error {
			t.Errorf("%q accepted", bad[:min(len(bad), 40)])
		}
	}
}
