// Package say is how Sitrep words things for people: short durations,
// UTC times, and what a timeline event means. Every adapter and export uses
// it, so a terminal, Slack and a postmortem say the same thing.
package say

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// EventLine is one timeline entry as a person reads it.
func EventLine(ev incidents.Event) string {
	who := ev.Actor
	if ev.Source != "" && ev.Source != ev.Actor {
		who += " (" + ev.Source + ")"
	}
	return fmt.Sprintf("%s  %-16s %s", ev.At.UTC().Format("2006-01-02 15:04:05"), who, Describe(ev))
}

// Describe says what an event means in a few words.
func Describe(ev incidents.Event) string {
	withMsg := func(s string) string {
		if ev.Message == "" {
			return s
		}
		return s + ": " + ev.Message
	}
	switch ev.Kind {
	case incidents.EventDeclared:
		return fmt.Sprintf("declared %s: %s — %s", ev.To, ev.Message, ev.Fields["severity_reason"])
	case incidents.EventAcknowledged:
		return withMsg("acknowledged")
	case incidents.EventSeverityChanged:
		return withMsg(fmt.Sprintf("severity %s → %s", ev.From, ev.To))
	case incidents.EventStatusChanged:
		if ev.From == ev.To {
			return withMsg("update (" + ev.To + ")")
		}
		return withMsg(fmt.Sprintf("status %s → %s", ev.From, ev.To))
	case incidents.EventResolved:
		return withMsg("resolved after " + humanField(ev.Fields["duration"]))
	case incidents.EventReopened:
		return withMsg("reopened")
	case incidents.EventNote:
		return "note: " + ev.Message
	case incidents.EventReminder:
		return "re-announced: " + ev.Message
	case incidents.EventNudge:
		return "asked for an update: " + ev.Message
	case incidents.EventOrigin:
		return fmt.Sprintf("declared from a message by %s: %s", ev.Fields["author"], ev.Message)
	case incidents.EventActionAdded:
		s := fmt.Sprintf("action item #%s: %s", ev.Fields["action"], ev.Message)
		if o := ev.Fields["owner"]; o != "" {
			s += " (owner " + o + ")"
		}
		return s
	case incidents.EventActionDone:
		return fmt.Sprintf("action item #%s done: %s", ev.Fields["action"], ev.Message)
	case incidents.EventPhaseReached, incidents.EventRoleAssigned, incidents.EventWarRoomOpened, incidents.EventPostmortem:
		return ev.Message
	case incidents.EventMessagePinned:
		return fmt.Sprintf("pinned message from %s: %s", ev.Fields["author"], ev.Message)
	}
	return withMsg(string(ev.Kind))
}

// Stamp is a UTC date and time: "2026-11-26 02:47 UTC".
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// Clock is a UTC time of day: "02:47 UTC".
func Clock(t time.Time) string { return t.UTC().Format("15:04 UTC") }

// Human is a short duration, the one wording of durations everywhere
// (incidents.Human: the domain's messages use it too).
func Human(d time.Duration) string { return incidents.Human(d) }

// humanField words a duration stored in an event's fields ("1m36s").
func humanField(v string) string {
	if d, err := time.ParseDuration(v); err == nil {
		return Human(d)
	}
	return v
}

// Count is n and its noun: "1 incident", "2 incidents".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Hidden reports a character that hides, rewrites or reorders what is shown:
// C0 controls but newline and tab, DEL, C1 controls, the Unicode bidi
// controls (which can make "gpj.exe" read "exe.jpg"), zero-width and
// invisible characters (U+200B, U+200C, U+2060–U+2064, U+FEFF), the line and
// paragraph separators, and tag characters (U+E0000–U+E007F: invisible text).
// Every adapter keeps them out of what it shows of outside text. (U+200D,
// the zero-width joiner, stays: emoji are made with it.)
func Hidden(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200b, r == 0x200c, r >= 0x2060 && r <= 0x2064, r == 0xfeff, r == 0x2028, r == 0x2029, r >= 0xe0000 && r <= 0xe007f:
		return true
	}
	return false
}

var dayPrefix = regexp.MustCompile(`^(\d+)d(.*)$`)

// ParseDuration reads a duration as people write one: Go's units, with
// days in front (30d, 1d12h, 720h, 90m).
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	m := dayPrefix.FindStringSubmatch(v)
	if m == nil {
		return time.ParseDuration(v)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 36500 {
		return 0, fmt.Errorf("%q: too many days", v)
	}
	d := time.Duration(n) * 24 * time.Hour
	if m[2] == "" {
		return d, nil
	}
	rest, err := time.ParseDuration(m[2])
	if err != nil {
		return 0, err
	}
	return d + rest, nil
}

// Truncate cuts s to at most n characters, ending in … when it cut.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(n-1, 0)]) + "…"
}
