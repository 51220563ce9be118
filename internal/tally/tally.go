// Package tally is how the fault and security tests say what they threw at
// Sitrep: inputs tried, refused (a clear answer and nothing stored — a
// signature, a body that is not JSON, an attack), accepted (answered 2xx or
// acknowledged, and so owed), and lost (accepted but not found afterwards:
// in the store, the timeline, Slack). `make faults` gathers the lines into
// one table. Only tests import it.
package tally

import (
	"fmt"
	"testing"
)

// Count is one test's inputs. Lost must come from what the test found, not
// be assumed: Report fails the test when any accepted input is lost, or when
// the inputs do not add up.
type Count struct {
	Tried, Refused, Accepted, Lost int
}

// Try records one input and whether it was accepted.
func (c *Count) Try(accepted bool) {
	c.Tried++
	if accepted {
		c.Accepted++
	} else {
		c.Refused++
	}
}

// Line is the line make faults reads.
func (c Count) Line(name string) string {
	return fmt.Sprintf("tally %s tried=%d refused=%d accepted=%d lost=%d", name, c.Tried, c.Refused, c.Accepted, c.Lost)
}

// Report logs the count and fails t on lost or unbalanced inputs.
func (c Count) Report(t testing.TB) {
	t.Helper()
	t.Log(c.Line(t.Name()))
	if c.Refused+c.Accepted != c.Tried {
		t.Errorf("%d refused + %d accepted ≠ %d tried", c.Refused, c.Accepted, c.Tried)
	}
	if c.Lost > 0 {
		t.Errorf("%d of %d accepted inputs lost", c.Lost, c.Accepted)
	}
}
