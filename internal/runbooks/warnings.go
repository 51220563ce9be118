package runbooks

import "fmt"

// Warnings are what a runbook allows but probably does not mean: it loads
// and runs, and `bot runbooks lint` and the start-up log say why it may
// surprise whoever follows it at 3 a.m.
func (rb *Runbook) Warnings() []Problem {
	var out []Problem
	changed := 0 // the last step that changes the pod template, 1-based
	for i, s := range rb.Steps {
		if s.Kind == Undo && s.Revision == 0 && changed > 0 { // a named revision is where it goes, whatever came before
			before := rb.Steps[changed-1]
			out = append(out, Problem{File: rb.File, Line: s.Line, Msg: fmt.Sprintf(
				"warning: step %d %q (kube.undo) follows step %d %q (%s), which changes the pod template and makes a revision of its own: "+
					"followed top to bottom, \"previous\" is counted from that revision. Put the roll back first, or name its revision",
				i+1, s.Name, changed, before.Name, before.Kind)})
		}
		if s.Kind == Restart || s.Kind == Undo {
			changed = i + 1
		}
	}
	return out
}
