package boltstore_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The benchmarks time each store operation next to a bare bbolt Update that
// writes the same bytes (the encoded incident and event) into the same shape
// of buckets, alternating the two in one loop so that the machine's noise
// falls on both. They report ns/op for each and the ratio, "x-bare".

// bare is the baseline: a bbolt file with an incidents bucket and one
// timeline bucket, written without decoding, transitions or indexes.
type bare struct {
	db       *bolt.DB
	incident []byte
	event    []byte
}

func openBare(b *testing.B, timelineLen int, incident, event []byte) *bare {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bare.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for done := 0; done < timelineLen || done == 0; done += 20000 {
		err := db.Update(func(tx *bolt.Tx) error {
			tl, err := tx.CreateBucketIfNotExists([]byte("timeline"))
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists([]byte("incidents")); err != nil {
				return err
			}
			for i := done; i < min(done+20000, timelineLen); i++ {
				seq, _ := tl.NextSequence()
				if err := tl.Put(key(seq), event); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return &bare{db: db, incident: incident, event: event}
}

func key(v uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, v)
	return k
}

func (w *bare) write() error {
	return w.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("incidents")).Put(key(1), w.incident); err != nil {
			return err
		}
		tl := tx.Bucket([]byte("timeline"))
		seq, _ := tl.NextSequence()
		return tl.Put(key(seq), w.event)
	})
}

// interleave runs store and baseline alternately b.N times and reports both.
func interleave(b *testing.B, store func() error, baseline func() error) {
	interleaveWith(b, store, nil, baseline)
}

// interleaveWith is interleave with untimed work after each store call
// (between may be nil).
func interleaveWith(b *testing.B, store func() error, between func(), baseline func() error) {
	var tStore, tBare time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := store(); err != nil {
			b.Fatal(err)
		}
		tStore += time.Since(start)
		if between != nil {
			b.StopTimer()
			between()
			b.StartTimer()
		}
		mid := time.Now()
		if err := baseline(); err != nil {
			b.Fatal(err)
		}
		tBare += time.Since(mid)
	}
	b.StopTimer()
	b.ReportMetric(float64(tStore.Nanoseconds())/float64(b.N), "store-ns/op")
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(tStore)/float64(tBare), "x-bare")
}

func BenchmarkDeclare(b *testing.B) {
	s := mustOpenStore(b, "")
	sample, events, _ := incidents.Declare(incidents.Declaration{Title: "Checkout error rate above 5%"}, alice, t0)
	incJSON, _ := json.Marshal(sample)
	evJSON, _ := json.Marshal(events[0])
	base := openBare(b, 0, incJSON, evJSON)
	interleave(b, func() error {
		inc, events, err := incidents.Declare(incidents.Declaration{Title: "Checkout error rate above 5%"}, alice, t0)
		if err != nil {
			return err
		}
		return s.Create(ctx, inc, events)
	}, base.write)
}

// BenchmarkDeclareWithOutbox is BenchmarkDeclare with the subscriptions
// of a Slack-connected Sitrep (slackbot.Subscriptions, mirrored here so the
// store's tests import no adapter): the declare writes its war-room effect in
// the same transaction; header and topic marks wait until there is a room.
// Between declares (untimed) the effect is finished, as a running Sitrep's
// consumer does; "backlog" keeps them all (a Slack that never answers).
func BenchmarkDeclareWithOutbox(b *testing.B) {
	for _, backlog := range []bool{false, true} {
		name := "drained"
		if backlog {
			name = "backlog"
		}
		b.Run(name, func(b *testing.B) {
			roomed := func(inc *incidents.Incident, _ incidents.Event) bool { return inc.Channel != "" }
			declared := func(_ *incidents.Incident, ev incidents.Event) bool { return ev.Kind == incidents.EventDeclared }
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "sitrep.db"), boltstore.Options{Subscriptions: []incidents.Subscription{
				{Consumer: "slack", Events: declared, Changes: roomed}, {Consumer: "slack-topic", Changes: roomed}}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			sample, events, _ := incidents.Declare(incidents.Declaration{Title: "Checkout error rate above 5%"}, alice, t0)
			incJSON, _ := json.Marshal(sample)
			evJSON, _ := json.Marshal(events[0])
			base := openBare(b, 0, incJSON, evJSON)
			declare := func() error {
				inc, events, err := incidents.Declare(incidents.Declaration{Title: "Checkout error rate above 5%"}, alice, t0)
				if err != nil {
					return err
				}
				return s.Create(ctx, inc, events)
			}
			var drain func()
			if !backlog {
				drain = func() {
					pending, _ := s.Pending(ctx, "slack")
					for _, e := range pending {
						s.FinishEffect(ctx, e)
					}
				}
			}
			interleaveWith(b, declare, drain, base.write)
		})
	}
}

// BenchmarkInboxReceive stores one Slack envelope before its ack (the
// payload of a real slash command), next to the bare write of the same bytes.
func BenchmarkInboxReceive(b *testing.B) {
	s := mustOpenStore(b, "")
	payload := []byte(`{"token":"x","team_id":"T1","channel_id":"C1","user_id":"U1","command":"/incident","text":"declare P2 Checkout error rate above 5%","response_url":"https://hooks.slack.com/commands/T1/1/x","trigger_id":"1.2.3"}`)
	env, _ := json.Marshal(incidents.Envelope{Source: "slack", ID: "e", Type: "slash_commands", Payload: payload})
	base := openBare(b, 0, env, []byte("x"))
	n := uint64(0)
	interleave(b, func() error {
		n++
		_, err := s.Receive(ctx, incidents.Envelope{Key: n, Source: "slack", ID: fmt.Sprint(n), Type: "slash_commands", Payload: payload, At: t0})
		return err
	}, base.write)
}

func BenchmarkAppendEvent(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("timeline=%d", n), func(b *testing.B) {
			s := mustOpenStore(b, "")
			inc := mustDeclare(b, s, "Checkout error rate above 5%")
			seed, _ := inc.AddNote("seed", alice, t0)
			if err := boltstore.SeedEvents(s, inc.ID, n-2, seed[0]); err != nil {
				b.Fatal(err)
			}
			incJSON, _ := json.Marshal(inc)
			evs, _ := inc.AddNote("pods restarting in eu-west-1", alice, t0)
			evJSON, _ := json.Marshal(evs[0])
			base := openBare(b, n, incJSON, evJSON)
			interleave(b, func() error {
				_, _, err := s.Update(ctx, inc.ID, note("pods restarting in eu-west-1"))
				return err
			}, base.write)
		})
	}
}

// BenchmarkStorm is an Alertmanager storm on one incident: rounds of 64
// writes at once, half of them repeats that change nothing, next to rounds
// of 64 bare writes of the same bytes through bbolt's own DB.Batch, with the
// 500 µs MaxBatchDelay the store used to give it (the half that repeat write
// nothing there either). One op is one round; the rounds alternate so the
// machine's noise falls on both.
func BenchmarkStorm(b *testing.B) {
	s := mustOpenStore(b, "")
	inc := mustDeclare(b, s, "Checkout error rate above 5%")
	incJSON, _ := json.Marshal(inc)
	evs, _ := inc.AddNote("alert firing", alice, t0)
	evJSON, _ := json.Marshal(evs[0])
	base := openBare(b, 0, incJSON, evJSON)
	base.db.MaxBatchDelay = 500 * time.Microsecond
	const round = 64
	n := 0
	store := func() error {
		n++
		errs := make([]error, round)
		together(round, func(i int) {
			w := incidents.Write{ID: inc.ID, Dedup: fmt.Sprintf("%d/%d", n, i), Change: memoNote("alert firing")}
			if i%2 == 1 {
				w.Dedup = "repeat" // seen before: nothing to write
			}
			_, errs[i] = s.Apply(ctx, w)
		})
		return errors.Join(errs...)
	}
	bareRound := func() error {
		errs := make([]error, round)
		together(round, func(i int) {
			if i%2 == 1 {
				errs[i] = base.db.Batch(func(tx *bolt.Tx) error { tx.Bucket([]byte("incidents")).Get(key(1)); return nil })
				return
			}
			errs[i] = base.db.Batch(func(tx *bolt.Tx) error {
				if err := tx.Bucket([]byte("incidents")).Put(key(1), base.incident); err != nil {
					return err
				}
				tl := tx.Bucket([]byte("timeline"))
				seq, _ := tl.NextSequence()
				return tl.Put(key(seq), base.event)
			})
		})
		return errors.Join(errs...)
	}
	if _, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: "repeat", Change: memoNote("first")}); err != nil {
		b.Fatal(err)
	}
	interleave(b, store, bareRound)
	b.ReportMetric(float64(round), "writes/round")
}
