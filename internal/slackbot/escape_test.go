package slackbot

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// unsafe finds what outside text must never become in Slack: a broadcast
// (<!channel>, <!here>, <!everyone>, <!subteam^…>), a link with a label of
// its own (<http…|…>, <mailto:…>), a reference that is not the plain form
// Sitrep writes, or a control that hides or reorders text.
var unsafe = regexp.MustCompile(`<![a-z]|<(?:https?|mailto|ftp|slack):|<[@#](?:[^UWC]|[UWC][A-Z0-9]*[^A-Z0-9>])|[\x00-\x08\x0b-\x1f\x7f\x{202a}-\x{202e}\x{2066}-\x{2069}\x{200e}\x{200f}\x{061c}]`)

// texts collects every string in a rendered payload.
func texts(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			texts(e, out)
		}
	case map[string]any:
		if x["type"] == "plain_text" {
			return // Slack shows plain_text as it is: no mentions, no links
		}
		for k, e := range x {
			if k != "value" && k != "action_id" && k != "block_id" { // a button's value is a command, not shown
				texts(e, out)
			}
		}
	}
}

// personRef is a mention of one person: only the people a test names may
// appear in one.
var personRef = regexp.MustCompile(`<@([^>|]*)`)

// checkRendered fails when a rendering holds anything unsafe, or mentions a
// person other than the named ones (the declarer U1 unless told).
func checkRendered(t *testing.T, what string, payload any, fallback string, named ...string) {
	t.Helper()
	if len(named) == 0 {
		named = []string{"U1"}
	}
	b, _ := json.Marshal(payload)
	var v any
	json.Unmarshal(b, &v)
	var all []string
	texts(v, &all)
	all = append(all, fallback)
	for _, s := range all {
		if m := unsafe.FindString(s); m != "" {
			t.Fatalf("%s renders %q in %q", what, m, s)
		}
		for _, m := range personRef.FindAllStringSubmatch(s, -1) {
			if !slices.Contains(named, m[1]) {
				t.Fatalf("%s mentions %s, whom nobody named, in %q", what, m[0], s)
			}
		}
	}
}

// FuzzEscape: whatever text comes from outside — a title, a note, a label,
// a status message — no rendering of it holds a mention, broadcast or link
// Sitrep did not build.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{
		"<!channel> DB down <http://evil.example/sso|Re-login to SSO>",
		"<!everyone> <!here> <!subteam^S123|oncall>", "status monitoring <!everyone> all good",
		"<@U123|admin> <#C123|general> <mailto:a@b.c|mail>", "gpj.\u202eexe", "\x1b[2J\x1b]0;pwned\x07", "a & b < c > d",
		"<<!channel>>", "<@U1", "&lt;!channel&gt;", "<@UABC>x<!here>", "ping <@U1> and <@UCEO> <@W2>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
		inc, _, err := incidents.Declare(incidents.Declaration{Title: strings.Repeat("x", 1) + s, Description: s, Service: s}, incidents.Actor{Name: "<@U1>", Source: "slack"}, at)
		if err != nil {
			return // refused input renders nothing
		}
		inc.ID, inc.Channel, inc.HeaderRef = 1, "C1", "1.2"
		inc.Links = map[string]string{"alert_url": "https://alerts.example/" + s, "runbook": s}
		blocks, fallback := Header(inc)
		checkRendered(t, "the header", blocks, fallback)
		checkRendered(t, "the topic", nil, Topic(inc))
		reply := commands.Reply{Text: s, Fields: []commands.Field{{Label: s, Value: s}}, Lines: []string{s},
			Buttons: []commands.Button{{Label: s, Command: "note " + s, Confirm: s}}}
		blocks, fallback = Blocks(reply)
		checkRendered(t, "a reply", blocks, fallback)
		reply.Error = true
		blocks, fallback = Blocks(reply)
		checkRendered(t, "an error reply", blocks, fallback)
	})
}

// TestOutsideTextNeverMentions: the measured attack, as a title from
// PagerDuty or Alertmanager, in the header, the topic and a reply; the
// people Sitrep knows are still mentioned.
func TestOutsideTextNeverMentions(t *testing.T) {
	title := "<!channel> DB down <http://evil.example/sso|Re-login to SSO> \u202egnp.exe"
	inc, _, err := incidents.Declare(incidents.Declaration{Title: title, Lead: "<@U7>"}, incidents.Actor{Name: "pagerduty", Source: "pagerduty"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inc.ID = 1
	blocks, fallback := Header(inc)
	checkRendered(t, "the header", blocks, fallback, "U7")
	b, _ := json.Marshal(blocks)
	if !strings.Contains(string(b), `\u003c@U7\u003e`) {
		t.Errorf("the lead is no longer mentioned: %s", b)
	}
	if !strings.Contains(fallback, "&lt;!channel&gt; DB down &lt;http://evil.example/sso|Re-login to SSO&gt;") {
		t.Errorf("fallback %q", fallback)
	}
	checkRendered(t, "the topic", nil, Topic(inc), "U7")
}

// TestOutsideMentionsStayText: an alert summary or a PagerDuty title that
// names a Slack user (<@UCEO>) must not ping them from the announcement,
// the header, the topic or an echo; the lead, the declarer and the author of
// a status update are still mentioned.
func TestOutsideMentionsStayText(t *testing.T) {
	title := "DB down, paging <@UCEO> and <@W0CTO>"
	inc, _, err := incidents.Declare(incidents.Declaration{Title: title, Lead: "<@U7>"}, incidents.Actor{Name: "<@U1>", Source: "slack"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inc.ID, inc.Channel = 1, "C1"
	blocks, fallback := Header(inc)
	checkRendered(t, "the header", blocks, fallback, "U1", "U7")
	if b, _ := json.Marshal(blocks); !strings.Contains(string(b), `\u003c@U7\u003e`) || !strings.Contains(string(b), `\u0026lt;@UCEO\u0026gt;`) {
		t.Errorf("want the lead mentioned and UCEO shown as text: %s", b)
	}
	checkRendered(t, "the topic", nil, Topic(inc), "U7")
	reply := commands.Reply{Text: "INC-1 note: ask <@UCEO>", Lines: []string{"by <@U5>: <@UCEO>"}, People: []string{"<@U5>"}}
	blocks, fallback = Blocks(reply)
	checkRendered(t, "a reply", blocks, fallback, "U5")
	if b, _ := json.Marshal(blocks); !strings.Contains(string(b), `by \u003c@U5\u003e`) {
		t.Errorf("the asker is not mentioned: %s", b)
	}
}
