package boltstore

import (
	"errors"
	"testing"
)

// TestHealthOrdersReportsByTransaction: writers report after their
// transaction ends, in any order; readiness follows the order the
// transactions ran in, not the order the reports came.
func TestHealthOrdersReportsByTransaction(t *testing.T) {
	disk := errors.New("disk full")
	type report struct {
		seq  uint64
		fail bool
	}
	for _, c := range []struct {
		name    string
		reports []report
		ready   bool
	}{
		{"a failure, then a later commit", []report{{1, true}, {2, false}}, true},
		{"a later commit reported first", []report{{2, false}, {1, true}}, true},
		{"a commit reported after a later failure", []report{{2, true}, {1, false}}, false},
		{"a failure after a commit", []report{{1, false}, {2, true}}, false},
		{"two failures, the older reported last, then a commit between them", []report{{3, true}, {1, true}, {2, false}}, false},
		{"a commit after both failures", []report{{3, true}, {1, true}, {4, false}}, true},
	} {
		var h health
		for _, r := range c.reports {
			if r.fail {
				h.failed(r.seq, disk)
			} else {
				h.committed(r.seq)
			}
		}
		if ready := h.last() == nil; ready != c.ready {
			t.Errorf("%s: ready %v, want %v", c.name, ready, c.ready)
		}
	}
}
