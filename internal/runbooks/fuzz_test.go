package runbooks_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// FuzzParse: no runbook file, however broken, panics the loader, and what it
// accepts is complete.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../runbooks/*.yaml")
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, name := range append(files, bad...) {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, problems := runbooks.Parse("fuzz.yaml", data, runbooks.Options{Namespaces: []string{"prod"}})
		if rb == nil {
			if len(problems) == 0 {
				t.Fatal("refused without saying why")
			}
			return
		}
		if rb.Name == "" || rb.Title == "" || len(rb.Steps) == 0 {
			t.Fatalf("accepted an incomplete runbook: %+v", rb)
		}
		for _, s := range rb.Steps {
			if s.Kind == "shell" || s.Kind == "" {
				t.Fatalf("accepted step kind %q", s.Kind)
			}
		}
	})
}
