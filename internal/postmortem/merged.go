package postmortem

import (
	"context"
	"errors"
	"slices"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// maxMerged bounds the timelines one postmortem merges.
const maxMerged = 64

// duplicates are inc and every incident merged into it, also through a
// duplicate that had its own duplicates merged into it first (when src can
// read incidents).
func duplicates(ctx context.Context, src Source, inc *incidents.Incident) []int64 {
	ids := []int64{inc.ID}
	getter, ok := src.(interface {
		Get(context.Context, int64) (*incidents.Incident, error)
	})
	queue := slices.Clone(inc.Duplicates)
	for len(queue) > 0 && len(ids) < maxMerged {
		id := queue[0]
		queue = queue[1:]
		if slices.Contains(ids, id) {
			continue
		}
		ids = append(ids, id)
		if ok {
			if d, err := getter.Get(ctx, id); err == nil {
				queue = append(queue, d.Duplicates...)
			}
		}
	}
	return ids
}

// errStopped ends a timeline whose reader stopped early.
var errStopped = errors.New("stopped")

// mergedTimeline streams the timelines of inc and of the duplicates merged
// into it as one, in time order (inc's first on a tie): each timeline is
// read by its own goroutine a page at a time, so memory stays bounded by
// the pages in flight, not the timelines' length. A duplicate's events are
// marked with its id ("(INC-8) …").
func mergedTimeline(ctx context.Context, src Source, inc *incidents.Incident, fn func(incidents.Event) error) error {
	if len(inc.Duplicates) == 0 {
		return src.Timeline(ctx, inc.ID, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ids := duplicates(ctx, src, inc)
	type stream struct {
		ch   chan incidents.Event
		err  error
		head *incidents.Event
	}
	streams := make([]*stream, len(ids))
	for i, id := range ids {
		s := &stream{ch: make(chan incidents.Event, 64)}
		streams[i] = s
		go func() {
			defer close(s.ch)
			err := src.Timeline(ctx, id, func(ev incidents.Event) error {
				select {
				case s.ch <- ev:
					return nil
				case <-ctx.Done():
					return errStopped
				}
			})
			if err != nil && !errors.Is(err, errStopped) {
				s.err = err // read after ch is closed
			}
		}()
	}
	defer func() { // every reader gone before the store may close
		cancel()
		for _, s := range streams {
			for range s.ch {
			}
		}
	}()
	next := func(s *stream) {
		if ev, ok := <-s.ch; ok {
			s.head = &ev
		} else {
			s.head = nil
		}
	}
	for _, s := range streams {
		next(s)
	}
	for {
		var pick *stream
		for _, s := range streams {
			if s.head != nil && (pick == nil || s.head.At.Before(pick.head.At)) {
				pick = s
			}
		}
		if pick == nil {
			break
		}
		ev := *pick.head
		if ev.Incident != inc.ID {
			ev.Message = "(" + incidents.FormatID(ev.Incident) + ") " + ev.Message
		}
		if err := fn(ev); err != nil {
			return err
		}
		next(pick)
	}
	for _, s := range streams {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}
