package kube

import (
	"fmt"
	"strings"
	"testing"
)

// TestLastLinesKeepsTheEndWithinBudget: a log larger than the budget keeps
// its newest lines; an overlong line is cut, not a reason to stop.
func TestLastLinesKeepsTheEndWithinBudget(t *testing.T) {
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, "line %05d\n", i)
	}
	b.WriteString(strings.Repeat("x", 200<<10) + "\n") // 200 KB on one line
	b.WriteString("last, without a newline")
	lines, err := lastLines(strings.NewReader(b.String()), 20000, "")
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	n := len(lines)
	if size > 20000 || lines[n-1] != "last, without a newline" || len(lines[n-2]) != maxLogLine+len(" …") || lines[n-3] != "line 09999" {
		t.Errorf("%d lines, %d bytes, ending %q", n, size, lines[max(0, n-3):])
	}
	// A filter looks through the whole tail: an early match is kept.
	lines, err = lastLines(strings.NewReader("ERROR early\n"+b.String()), 20000, "ERROR")
	if err != nil || len(lines) != 1 || lines[0] != "ERROR early" {
		t.Errorf("filtered: %q %v", lines, err)
	}
}
