package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Create stores a new incident and its first events in one transaction.
func (s *Store) Create(ctx context.Context, inc *incidents.Incident, events []incidents.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.track(s.updateSeq(func(tx *bolt.Tx) error { return s.insert(s.directTx(tx), inc, events) }))
}

// insert gives inc the next id and stores it with its events and indexes.
func (s *Store) insert(tx *wtx, inc *incidents.Incident, events []incidents.Event) error {
	seq, err := tx.Bucket(bucketIncidents).NextSequence()
	if err != nil {
		return err
	}
	inc.ID = int64(seq)
	if err := tx.store(inc); err != nil {
		return err
	}
	if err := reindex(tx.Tx, indexed{}, inc); err != nil {
		return err
	}
	if err := reattend(tx.Tx, inc.ID, attention{}, attentionOf(inc), inc.Severity); err != nil {
		return err
	}
	if err := indexDeclaration(tx.Tx, inc); err != nil {
		return err
	}
	if err := appendEvents(tx.Tx, inc.ID, events); err != nil {
		return err
	}
	return s.queueEffects(tx.Tx, inc, events)
}

// errNoChange rolls back a transaction that wrote nothing.
var errNoChange = errors.New("no change")

// Update applies change to incident id and stores the result and its events
// atomically.
func (s *Store) Update(ctx context.Context, id int64, change func(*incidents.Incident) ([]incidents.Event, error)) (*incidents.Incident, []incidents.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var (
		inc    *incidents.Incident
		events []incidents.Event
	)
	seq, err := s.updateSeq(func(btx *bolt.Tx) error {
		tx := s.directTx(btx)
		var err error
		if inc, err = tx.incident(id); err != nil {
			return err
		}
		if events, err = s.modify(tx, inc, func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) { return change(inc) }); err != nil {
			return err
		}
		if len(events) == 0 {
			return errNoChange
		}
		return nil
	})
	s.track(seq, err)
	if errors.Is(err, errNoChange) {
		got, gerr := s.Get(ctx, id)
		return got, nil, gerr
	}
	if err != nil {
		return nil, nil, err
	}
	return inc, events, nil
}

// UpdateAll applies change to the incidents ids and stores each one that
// got events, with them, in one transaction.
func (s *Store) UpdateAll(ctx context.Context, ids []int64, change func([]*incidents.Incident) ([][]incidents.Event, error)) ([]*incidents.Incident, [][]incidents.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return nil, nil, incidents.Errorf(incidents.EInvalid, "%s is named twice", incidents.FormatID(id))
		}
	}
	var (
		incs   []*incidents.Incident
		events [][]incidents.Event
	)
	seq, err := s.updateSeq(func(btx *bolt.Tx) error {
		tx := s.directTx(btx)
		incs, events = make([]*incidents.Incident, len(ids)), nil
		befores := make([]before, len(ids))
		for i, id := range ids {
			inc, err := tx.incident(id)
			if err != nil {
				return err
			}
			incs[i], befores[i] = inc, beforeOf(inc)
		}
		var err error
		if events, err = change(incs); err != nil {
			return err
		}
		if len(events) != len(ids) {
			return fmt.Errorf("update %d incidents: the change returned %d event lists", len(ids), len(events))
		}
		wrote := false
		for i, inc := range incs {
			if len(events[i]) == 0 {
				continue
			}
			inc.Aliases = takeable(btx, inc.Aliases, befores[i].Aliases, ids)
			if err := s.save(tx, inc, befores[i], ids[i], events[i]); err != nil {
				return err
			}
			wrote = true
		}
		if !wrote {
			return errNoChange
		}
		for j, dup := range incs { // a merge: the alert memos go with the links
			if !merged(events[j]) {
				continue
			}
			for i, into := range incs {
				if i != j && into.ID == dup.MergedInto {
					if err := copyMemo(btx, dup.ID, into.ID); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	s.track(seq, err)
	if errors.Is(err, errNoChange) {
		events = make([][]incidents.Event, len(ids))
		err = nil
	}
	if err != nil {
		return nil, nil, err
	}
	return incs, events, nil
}

// takeable keeps of aliases those an incident may take over: the ones it
// had, and new ones the link index gives to one of the incidents of this
// change (or to none). An old duplicate's alert group that has since fired
// again into another incident stays with that one.
func takeable(tx *bolt.Tx, aliases, had []incidents.Link, ids []int64) []incidents.Link {
	links := tx.Bucket(bucketIndex).Bucket(indexLink)
	out := aliases[:0:0]
	for _, l := range aliases {
		owner, err := strconv.ParseInt(string(links.Get(linkKey(l.System, l.Ref))), 10, 64)
		if slices.Contains(had, l) || err != nil || slices.Contains(ids, owner) {
			out = append(out, l)
		}
	}
	return out
}

func merged(events []incidents.Event) bool {
	for _, ev := range events {
		if ev.Kind == incidents.EventMerged {
			return true
		}
	}
	return false
}

// copyMemo gives incident to the memo entries of from that it lacks.
func copyMemo(tx *bolt.Tx, from, to int64) error {
	src, err := (&memo{tx: tx, id: from}).bucket(false)
	if err != nil || src == nil {
		return err
	}
	dst, err := (&memo{tx: tx, id: to}).bucket(true)
	if err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if dst.Get(k) != nil {
			return nil
		}
		return dst.Put(k, v)
	})
}

// before is what an incident's indexes held before a change.
type before struct {
	indexed
	attention
}

func beforeOf(inc *incidents.Incident) before {
	return before{indexed{inc.Channel, maps.Clone(inc.Links), slices.Clone(inc.Aliases)}, attentionOf(inc)}
}

// modify runs change on inc (with its memo) and, when it returns events,
// stores the result.
func (s *Store) modify(tx *wtx, inc *incidents.Incident, change func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error)) ([]incidents.Event, error) {
	id := inc.ID
	was := beforeOf(inc)
	events, err := change(inc, &memo{tx: tx.Tx, id: id})
	if err != nil || len(events) == 0 {
		return nil, err
	}
	return events, s.save(tx, inc, was, id, events)
}

// save stores inc, changed from was, with its events: the record, its
// indexes, the timeline and the effects the events imply.
func (s *Store) save(tx *wtx, inc *incidents.Incident, was before, id int64, events []incidents.Event) error {
	if inc.ID != id {
		return fmt.Errorf("update %s: the change altered the incident id", incidents.FormatID(id))
	}
	if err := tx.store(inc); err != nil {
		return err
	}
	if err := reindex(tx.Tx, was.indexed, inc); err != nil {
		return err
	}
	if err := reattend(tx.Tx, id, was.attention, attentionOf(inc), inc.Severity); err != nil {
		return err
	}
	if err := appendEvents(tx.Tx, id, events); err != nil {
		return err
	}
	return s.queueEffects(tx.Tx, inc, events)
}

func appendEvents(tx *bolt.Tx, id int64, events []incidents.Event) error {
	tl, err := tx.Bucket(bucketTimelines).CreateBucketIfNotExists(itob(uint64(id)))
	if err != nil {
		return err
	}
	for i := range events {
		seq, err := tl.NextSequence()
		if err != nil {
			return err
		}
		events[i].Seq, events[i].Incident = seq, id
		v, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if err := tl.Put(itob(seq), v); err != nil {
			return err
		}
	}
	return nil
}

// indexed is what the indexes held for an incident before a change.
type indexed struct {
	Channel string
	Links   map[string]string
	Aliases []incidents.Link
}

// linkKeys are the link index's keys of an incident: its links and the
// aliases it took over from merged duplicates.
func (x indexed) linkKeys() map[string]bool {
	keys := make(map[string]bool, len(x.Links)+len(x.Aliases))
	for system, ref := range x.Links {
		keys[string(linkKey(system, ref))] = true
	}
	for _, l := range x.Aliases {
		keys[string(linkKey(l.System, l.Ref))] = true
	}
	return keys
}

// reindex keeps the channel and link indexes in step with the incident.
func reindex(tx *bolt.Tx, before indexed, after *incidents.Incident) error {
	idx := tx.Bucket(bucketIndex)
	id := []byte(strconv.FormatInt(after.ID, 10))
	ch := idx.Bucket(indexChannel)
	if before.Channel != "" && before.Channel != after.Channel {
		if err := ch.Delete([]byte(before.Channel)); err != nil {
			return err
		}
	}
	if after.Channel != "" && after.Channel != before.Channel {
		if owner := ch.Get([]byte(after.Channel)); owner != nil && !bytes.Equal(owner, id) {
			return incidents.Errorf(incidents.EConflict, "channel %s is already the war room of INC-%s", after.Channel, owner)
		}
		if err := ch.Put([]byte(after.Channel), id); err != nil {
			return err
		}
	}
	if maps.Equal(before.Links, after.Links) && slices.Equal(before.Aliases, after.Aliases) {
		return nil // most changes (a note, an alert) leave them be: no key sets to build
	}
	links := idx.Bucket(indexLink)
	was, now := before.linkKeys(), indexed{Links: after.Links, Aliases: after.Aliases}.linkKeys()
	for k := range now {
		if was[k] {
			continue // unchanged: writing it again would only dirty index pages
		}
		if err := links.Put([]byte(k), id); err != nil {
			return err
		}
	}
	for k := range was {
		// Only its own: a merged duplicate's links belong to the survivor.
		if !now[k] && bytes.Equal(links.Get([]byte(k)), id) {
			if err := links.Delete([]byte(k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func linkKey(system, ref string) []byte { return []byte(system + "\x00" + ref) }

// Get returns incident id.
func (s *Store) Get(ctx context.Context, id int64) (*incidents.Incident, error) {
	var inc *incidents.Incident
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		inc, err = getIncident(tx, id, &s.decoded)
		return err
	})
	return inc, err
}

// List returns the incidents passing f, newest first.
func (s *Store) List(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, error) {
	switch { // through an index, whatever the history: the published, the open ones, or a window
	case f.Public:
		if out, ok, err := s.listPublic(ctx, f); ok || err != nil {
			return out, err
		}
	case !f.All:
		if out, ok, err := s.listOpen(ctx, f); ok || err != nil {
			return out, err
		}
	case !f.Since.IsZero():
		if out, ok, err := s.listSince(ctx, f); ok || err != nil {
			return out, err
		}
	}
	var out []*incidents.Incident
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIncidents).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var inc incidents.Incident
			if err := json.Unmarshal(v, &inc); err != nil {
				s.unreadable.Add(1) // reported by Check; one bad record does not stop the rest
				continue
			}
			if f.Match(&inc) {
				out = append(out, &inc)
				if f.Limit > 0 && len(out) >= f.Limit {
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// timelinePage is how many events Timeline decodes per read transaction:
// memory stays bounded however long the timeline, and no read transaction
// stays open while fn works (a long one would hold up writers that grow the file).
const timelinePage = 512

// Timeline streams incident id's events in order, a page at a time.
func (s *Store) Timeline(ctx context.Context, id int64, fn func(incidents.Event) error) error {
	var after uint64 // last seq delivered
	for {
		page := make([]incidents.Event, 0, timelinePage)
		err := s.view(func(tx *bolt.Tx) error {
			if after == 0 {
				if _, err := getIncident(tx, id, &s.decoded); err != nil {
					return err
				}
			}
			tl := tx.Bucket(bucketTimelines).Bucket(itob(uint64(id)))
			if tl == nil {
				return nil
			}
			c := tl.Cursor()
			k, v := c.Seek(itob(after + 1))
			for ; k != nil && len(page) < timelinePage; k, v = c.Next() {
				var ev incidents.Event
				if err := json.Unmarshal(v, &ev); err != nil {
					return fmt.Errorf("decode event %s/%x: %w", incidents.FormatID(id), k, err)
				}
				page = append(page, ev)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ev := range page {
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(page) < timelinePage {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// ByChannel finds the incident whose war room is channel.
func (s *Store) ByChannel(ctx context.Context, channel string) (int64, error) {
	return s.lookup(indexChannel, []byte(channel), "no incident has its war room in channel "+channel)
}

// ByLink finds the incident linked to an external reference.
func (s *Store) ByLink(ctx context.Context, system, ref string) (int64, error) {
	return s.lookup(indexLink, linkKey(system, ref), fmt.Sprintf("no incident is linked to %s %s", system, ref))
}

func (s *Store) lookup(index, key []byte, missing string) (int64, error) {
	var id int64
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIndex).Bucket(index).Get(key)
		if v == nil {
			return incidents.Errorf(incidents.ENotFound, "%s", missing)
		}
		var err error
		id, err = strconv.ParseInt(string(v), 10, 64)
		return err
	})
	return id, err
}

var bucketMemos = []byte("memos")

// memo is an incident's Memo: memos/<id> in the same transaction.
type memo struct {
	tx       *bolt.Tx
	id       int64
	readOnly bool // a probe's: a Set means the change writes
}

func (m *memo) bucket(create bool) (*bolt.Bucket, error) {
	top := m.tx.Bucket(bucketMemos)
	if top == nil {
		if !create {
			return nil, nil
		}
		var err error
		if top, err = m.tx.CreateBucketIfNotExists(bucketMemos); err != nil {
			return nil, err
		}
	}
	if !create {
		return top.Bucket(itob(uint64(m.id))), nil
	}
	return top.CreateBucketIfNotExists(itob(uint64(m.id)))
}

func (m *memo) Get(key string) string {
	b, err := m.bucket(false)
	if err != nil || b == nil {
		return ""
	}
	return string(b.Get([]byte(key)))
}

func (m *memo) Set(key, value string) error {
	if m.readOnly {
		return errProbeWrite
	}
	b, err := m.bucket(true)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), []byte(value))
}

var _ incidents.Importer = (*Store)(nil)

// Import stores inc as it is — its id, its events' seqs — with its indexes,
// and no effects (bot migrate copy).
func (s *Store) Import(ctx context.Context, inc *incidents.Incident, events []incidents.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.track(s.updateSeq(func(btx *bolt.Tx) error {
		tx := s.directTx(btx)
		b := tx.Bucket(bucketIncidents)
		if b.Get(itob(uint64(inc.ID))) != nil {
			return incidents.Errorf(incidents.EConflict, "%s is already here", inc.Key())
		}
		if b.Sequence() < uint64(inc.ID) {
			if err := b.SetSequence(uint64(inc.ID)); err != nil {
				return err
			}
		}
		if err := tx.store(inc); err != nil {
			return err
		}
		was := indexed{}
		if inc.MergedInto != 0 {
			// A merged duplicate keeps its links as a record; the index gives
			// them to the survivor (its aliases), whichever is copied first.
			links := tx.Bucket(bucketIndex).Bucket(indexLink)
			was.Links = map[string]string{}
			for system, ref := range inc.Links {
				if links.Get(linkKey(system, ref)) != nil {
					was.Links[system] = ref
				}
			}
		}
		if err := reindex(tx.Tx, was, inc); err != nil {
			return err
		}
		if err := reattend(tx.Tx, inc.ID, attention{}, attentionOf(inc), inc.Severity); err != nil {
			return err
		}
		if err := indexDeclaration(tx.Tx, inc); err != nil {
			return err
		}
		tl, err := tx.Bucket(bucketTimelines).CreateBucketIfNotExists(itob(uint64(inc.ID)))
		if err != nil {
			return err
		}
		for i := range events {
			v, err := json.Marshal(&events[i])
			if err != nil {
				return err
			}
			if err := tl.Put(itob(events[i].Seq), v); err != nil {
				return err
			}
			if tl.Sequence() < events[i].Seq {
				if err := tl.SetSequence(events[i].Seq); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}
