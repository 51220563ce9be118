package incidents

import (
	"fmt"
	neturl "net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Relations between incidents and the people in them: who is invited (a
// private incident's members), duplicates merged into a survivor, and
// related incidents linked both ways. A change to two incidents is one
// transition over both, stored in one transaction (Store.UpdateAll).

// MaxMembers bounds the people invited to one incident.
const MaxMembers = 200

// Invite adds people to the incident: they may see it when it is private,
// and chat adapters bring them into its war room.
func (inc *Incident) Invite(users []string, by Actor, at time.Time) ([]Event, error) {
	var added []string
	for _, u := range users {
		u = strings.TrimSpace(u)
		if u == "" || slices.ContainsFunc(append(inc.People(), added...), func(p string) bool { return SamePerson(p, u) }) {
			continue
		}
		added = append(added, u)
	}
	if len(added) == 0 {
		return nil, Errorf(EConflict, "%s already has everyone named", inc.Key())
	}
	if len(inc.Members)+len(added) > MaxMembers {
		return nil, Errorf(EInvalid, "%s would have more than %d people invited", inc.Key(), MaxMembers)
	}
	inc.Members = append(inc.Members, added...)
	ev := inc.event(EventMembersAdded, by, at)
	ev.Message = "Invited " + strings.Join(added, ", ")
	ev.Fields = map[string]string{"users": strings.Join(added, ",")}
	inc.touch(at)
	return []Event{ev}, nil
}

// MergeGrace is how long a merged duplicate's war room stays open (saying
// where to go) before it is archived, unless SetMergeGrace says otherwise.
const MergeGrace = time.Hour

var mergeGrace atomic.Int64 // SetMergeGrace's; 0 = MergeGrace

// ArchiveGrace is the grace in force: a merged duplicate's war room is
// archived this long after the merge.
func ArchiveGrace() time.Duration {
	if d := mergeGrace.Load(); d > 0 {
		return time.Duration(d)
	}
	return MergeGrace
}

// SetMergeGrace sets the grace (0 or less: MergeGrace), once at start-up,
// before any incident is read (like SetUpdateCadence, it is part of the
// ReminderPolicy the due index follows).
func SetMergeGrace(d time.Duration) { mergeGrace.Store(int64(max(d, 0))) }

// mergedLinks are the systems whose links a survivor takes over from its
// duplicate: where alerts and pages come from (the Alertmanager group key,
// the PagerDuty incident), so what comes next lands on the survivor.
var mergedLinks = []string{SourceAlertmanager, SourcePagerDuty}

// Merge records dup as a duplicate of into: dup is resolved as merged
// (a link both ways), into takes over its alert and page links and invites
// its people. The two event lists are dup's and into's.
func Merge(dup, into *Incident, by Actor, at time.Time) ([]Event, []Event, error) {
	switch {
	case dup.ID == into.ID:
		return nil, nil, Errorf(EInvalid, "%s cannot be merged into itself", dup.Key())
	case dup.MergedInto != 0:
		return nil, nil, Errorf(EConflict, "%s was already merged into %s", dup.Key(), FormatID(dup.MergedInto))
	case into.MergedInto != 0:
		return nil, nil, Errorf(EConflict, "%s was itself merged into %s: merge into that one", into.Key(), FormatID(into.MergedInto))
	case !into.Open():
		return nil, nil, Errorf(EConflict, "%s is resolved: merge into an open incident (or reopen it first)", into.Key())
	case dup.Drill != into.Drill:
		return nil, nil, Errorf(EInvalid, "%s and %s are not both drills: a drill and a real incident are never merged", dup.Key(), into.Key())
	case dup.Private != into.Private:
		return nil, nil, Errorf(EInvalid, "%s and %s are not both private: merging would show one's timeline and people to those of the other", dup.Key(), into.Key())
	case len(into.Duplicates) >= MaxMembers:
		return nil, nil, Errorf(EInvalid, "%s already has %d duplicates", into.Key(), len(into.Duplicates))
	}
	var dupEvents, intoEvents []Event
	if dup.Open() {
		ev, err := dup.Resolve("Duplicate of "+into.Key()+": "+into.Title, by, at)
		if err != nil {
			return nil, nil, err
		}
		dupEvents = ev
	}
	var moved []string
	for _, system := range mergedLinks {
		if ref := dup.Links[system]; ref != "" {
			into.Aliases = append(into.Aliases, Link{System: system, Ref: ref})
			moved = append(moved, system+" "+ref)
		}
	}
	for _, l := range dup.Aliases { // what dup had taken over from its own duplicates
		into.Aliases = append(into.Aliases, l)
		moved = append(moved, l.System+" "+l.Ref)
	}
	dup.Aliases = nil
	if len(moved) > 0 { // its alerts are the survivor's now (the store moves their memos with them)
		into.Firing += dup.Firing
	}
	dup.MergedInto, dup.MergedAt = into.ID, at
	into.Duplicates = append(into.Duplicates, dup.ID)

	ev := dup.event(EventMerged, by, at)
	ev.Message = fmt.Sprintf("Merged into %s (%s) as a duplicate", into.Key(), into.Title)
	if len(moved) > 0 {
		ev.Message += "; its alerts and pages now land there"
	}
	ev.Fields = map[string]string{"into": into.Key()}
	dupEvents = append(dupEvents, ev)
	dup.touch(at)

	var invited []string
	for _, p := range dup.People() {
		if p == dup.DeclaredBy && isIntegration(dup.Source) {
			continue // "Alertmanager" is not a person to invite
		}
		if p != "" && !slices.ContainsFunc(append(into.People(), invited...), func(q string) bool { return SamePerson(p, q) }) {
			invited = append(invited, p)
		}
	}
	invited = invited[:min(len(invited), MaxMembers-min(len(into.Members), MaxMembers))]
	into.Members = append(into.Members, invited...)
	in := into.event(EventMergedIn, by, at)
	in.Message = fmt.Sprintf("%s (%s) merged into this incident as a duplicate", dup.Key(), dup.Title)
	if len(moved) > 0 {
		in.Message += "; its alerts and pages land here from now on"
	}
	in.Fields = map[string]string{"from": dup.Key()}
	if len(moved) > 0 {
		in.Fields["moved"] = strings.Join(moved, ", ")
	}
	if len(invited) > 0 {
		in.Fields["users"] = strings.Join(invited, ",")
	}
	intoEvents = append(intoEvents, in)
	if dup.Severity < into.Severity && into.Open() { // the survivor answers for the worse of the two
		sev, err := into.ChangeSeverity(dup.Severity, fmt.Sprintf("merged %s, a %s", dup.Key(), dup.Severity), by, at)
		if err != nil {
			return nil, nil, err
		}
		intoEvents = append(intoEvents, sev...)
	}
	into.touch(at)
	return dupEvents, intoEvents, nil
}

// Relate links two incidents without merging them: each names the other.
func Relate(a, b *Incident, by Actor, at time.Time) ([]Event, []Event, error) {
	switch {
	case a.ID == b.ID:
		return nil, nil, Errorf(EInvalid, "%s cannot be linked to itself", a.Key())
	case slices.Contains(a.Related, b.ID):
		return nil, nil, Errorf(EConflict, "%s and %s are already linked", a.Key(), b.Key())
	case len(a.Related) >= MaxMembers || len(b.Related) >= MaxMembers:
		return nil, nil, Errorf(EInvalid, "an incident links to at most %d others", MaxMembers)
	}
	one := func(inc, other *Incident) []Event {
		inc.Related = append(inc.Related, other.ID)
		ev := inc.event(EventLinked, by, at)
		ev.Message = fmt.Sprintf("Linked to %s (%s)", other.Key(), other.Name())
		if other.Private { // its title is for its own people, who may not be this one's
			ev.Message = fmt.Sprintf("Linked to %s (private)", other.Key())
		}
		ev.Fields = map[string]string{"incident": other.Key()}
		inc.touch(at)
		return []Event{ev}
	}
	return one(a, b), one(b, a), nil
}

// LinkPostmortem records where the written postmortem lives, and that the
// Document phase is reached.
func (inc *Incident) LinkPostmortem(url string, by Actor, at time.Time) ([]Event, error) {
	url = strings.TrimSpace(url)
	if u, err := neturl.Parse(url); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || strings.ContainsAny(url, " <>|\t\n") || len(url) > 2000 {
		return nil, Errorf(EInvalid, "%q is not a link: give the postmortem's http(s) address", Cut(url, 80))
	}
	if inc.PostmortemURL == url {
		return nil, Errorf(EConflict, "%s's postmortem is already linked to %s", inc.Key(), url)
	}
	inc.PostmortemURL = url
	ev := inc.event(EventPostmortemLink, by, at)
	ev.Message, ev.To = "Postmortem written: "+url, url
	inc.touch(at)
	return append([]Event{ev}, inc.reach(Document, by, at)...), nil
}
