package console

import (
	"fmt"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/commands"
)

// oneLine keeps an item on its line: a newline in outside text (a note, a
// title, an alert summary) is shown as ⏎, so it cannot print a line that
// looks like Sitrep's own ("✓ INC-1 resolved by @alice").
var oneLine = strings.NewReplacer("\r\n", " ⏎ ", "\n", " ⏎ ", "\r", " ⏎ ", "\u2028", " ⏎ ", "\u2029", " ⏎ ")

// Render lays a reply out as terminal text. Errors are one line; the
// headline, each field and each line are one line each.
func Render(r commands.Reply) string {
	var b strings.Builder
	r.Text = oneLine.Replace(r.Text)
	if r.Error {
		b.WriteString("error: " + r.Text)
		if r.Usage != "" {
			b.WriteString(" (usage: " + r.Usage + ")")
		}
		b.WriteString("\n")
		return b.String()
	}
	b.WriteString(r.Text + "\n")
	width := 0
	for _, f := range r.Fields {
		width = max(width, len([]rune(f.Label)))
	}
	for _, f := range r.Fields {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, f.Label, oneLine.Replace(f.Value))
	}
	for _, l := range r.Lines {
		b.WriteString("  " + oneLine.Replace(l) + "\n")
	}
	if r.File != nil {
		fmt.Fprintf(&b, "----- %s -----\n%s", r.File.Name, r.File.Content)
		if !strings.HasSuffix(string(r.File.Content), "\n") {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "----- end of %s -----\n", r.File.Name)
	}
	if len(r.Buttons) > 0 {
		parts := make([]string, len(r.Buttons))
		for i, btn := range r.Buttons {
			label := btn.Label
			if btn.Input != "" {
				label += "…"
			}
			parts[i] = fmt.Sprintf("[%d] %s", i+1, label)
		}
		b.WriteString("  " + strings.Join(parts, "  ") + "   (type a number to press)\n")
	}
	return b.String()
}
