package runbooks

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong in a runbook file, at a line (and a column,
// when known: a PromQL error points into its query).
type Problem struct {
	File string
	Line int
	Msg  string
	Col  int
}

func (p Problem) String() string {
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Problems is every problem found; it is the loader's error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Options tighten validation.
type Options struct {
	// Namespaces, when set, are the only ones a runbook may target.
	Namespaces []string
	// Release: the files are release procedures (LoadProcedures): they
	// need a strategy and rollback steps, match nothing, and may use the
	// release kinds.
	Release bool
}

// Set is the loaded runbooks, by name.
type Set struct {
	list   []*Runbook
	byName map[string]*Runbook
}

// Runbooks returns every runbook, by file name.
func (s *Set) Runbooks() []*Runbook {
	if s == nil {
		return nil
	}
	return s.list
}

// Get returns the runbook called name, or nil.
func (s *Set) Get(name string) *Runbook {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// MaxFile bounds one runbook file.
const MaxFile = 1 << 20

// readRegular reads a runbook only if it is a regular file within MaxFile:
// a FIFO would block start-up, a link to /dev/zero or a huge file would
// exhaust memory. Stat does not open the file, so a FIFO never blocks.
func readRegular(fsys fs.FS, file string) ([]byte, error) {
	st, err := fs.Stat(fsys, file)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		what := "not a regular file"
		switch m := st.Mode(); {
		case m&fs.ModeNamedPipe != 0:
			what = "a FIFO"
		case m&fs.ModeDevice != 0:
			what = "a device"
		case m&fs.ModeSocket != 0:
			what = "a socket"
		}
		return nil, fmt.Errorf("%s, not a regular file: runbooks are read only from regular files", what)
	}
	if st.Size() > MaxFile {
		return nil, fmt.Errorf("%d bytes: a runbook file is at most %d", st.Size(), MaxFile)
	}
	f, err := fsys.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err == nil && len(data) > MaxFile {
		err = fmt.Errorf("grew past %d bytes while being read", MaxFile)
	}
	return data, err
}

// Load reads every .yaml and .yml file in dir of fsys. It returns the
// runbooks and, if any file is wrong, Problems listing everything wrong.
func Load(fsys fs.FS, dir string, opt Options) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("runbooks: %w", err)
	}
	set := &Set{byName: map[string]*Runbook{}}
	var problems Problems
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		file := path.Join(dir, name)
		data, err := readRegular(fsys, file)
		if err != nil {
			problems = append(problems, Problem{File: file, Msg: err.Error()})
			continue
		}
		rb, ps := Parse(file, data, opt)
		problems = append(problems, ps...)
		if rb == nil {
			continue
		}
		if other := set.byName[rb.Name]; other != nil {
			problems = append(problems, Problem{File: file, Line: 1, Msg: fmt.Sprintf("runbook name %q is also used by %s", rb.Name, other.File)})
			continue
		}
		set.byName[rb.Name] = rb
		set.list = append(set.list, rb)
	}
	if len(problems) > 0 {
		return set, problems
	}
	return set, nil
}

// LoadFile reads one runbook file of fsys (bot runbooks lint file.yaml, an
// editor's or a pre-commit hook's check).
func LoadFile(fsys fs.FS, file string, opt Options) (*Runbook, error) {
	data, err := readRegular(fsys, file)
	if err != nil {
		return nil, Problems{{File: file, Msg: err.Error()}}
	}
	rb, ps := Parse(file, data, opt)
	if len(ps) > 0 {
		return nil, ps
	}
	return rb, nil
}

var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Parse reads one runbook strictly: unknown fields and kinds, missing
// parameters and bad PromQL are problems with the line they are on.
// Every problem of the file is reported at once: an unknown field or a
// wrong type does not hide what else is wrong; only YAML that does not
// parse at all stops there.
func Parse(file string, data []byte, opt Options) (*Runbook, Problems) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlProblems(file, err)
	}
	var rb Runbook
	var ps Problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rb); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, yamlProblems(file, err)
		}
		ps = yamlProblems(file, err) // the rest is decoded: check it too
	}
	rb.File = file
	steps := stepNodes(&root, "steps")
	for i := range rb.Steps {
		if i < len(steps) {
			rb.Steps[i].Line = steps[i].Line
		}
	}
	for i, n := range stepNodes(&root, "rollback") {
		if i < len(rb.Rollback) {
			rb.Rollback[i].Line = n.Line
		}
	}
	// A field whose value had the wrong type was left empty by the decoder:
	// its type error says what is wrong; "needs a name" at the same line
	// would only repeat it.
	typed := map[int]bool{}
	for _, p := range ps {
		typed[p.Line] = true
	}
	for _, p := range validate(&rb, opt, queryPlace(data, steps), topLines(&root)) {
		if !typed[p.Line] {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Or(a.Line-b.Line, a.Col-b.Col) })
		return nil, ps
	}
	return &rb, nil
}

// queryPlace maps a position in step i's query to the file's line and
// column: a query written as a block (query: |) starts on the line after
// the key, at its indentation; a one-line query where its value starts.
func queryPlace(data []byte, steps []*yaml.Node) func(i, line, col int) (int, int) {
	lines := strings.Split(string(data), "\n")
	return func(i, qline, qcol int) (int, int) {
		if i >= len(steps) {
			return 0, 0
		}
		v := mapValue(steps[i], "query")
		if v == nil {
			return steps[i].Line, 0
		}
		if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			first := v.Line // the line of the | indicator; the text is below
			indent := 0
			if first < len(lines) {
				l := lines[first]
				indent = len(l) - len(strings.TrimLeft(l, " "))
			}
			return first + 1 + qline, indent + qcol + 1
		}
		col := v.Column + qcol
		if v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			col++
		}
		return v.Line + qline, col
	}
}

// topLines finds the line of each top-level key (and of params.namespace):
// a problem with the name, the match or the namespace points at it.
func topLines(root *yaml.Node) func(path ...string) int {
	return func(path ...string) int {
		if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
			return 1
		}
		m, line := root.Content[0], 1
		for _, key := range path {
			for i := 0; m != nil && m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == key {
					line, m = m.Content[i].Line, m.Content[i+1]
					goto next
				}
			}
			return line
		next:
		}
		return line
	}
}

// mapValue is the value of key in a mapping node, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; m != nil && m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func yamlProblems(file string, err error) Problems {
	var ps Problems
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			ps = append(ps, lineProblem(file, e))
		}
		return ps
	}
	return Problems{lineProblem(file, strings.TrimPrefix(err.Error(), "yaml: "))}
}

func lineProblem(file, msg string) Problem {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: n, Msg: plainType(strings.Replace(m[2], "in type runbooks.", "in a ", 1))}
	}
	return Problem{File: file, Line: 1, Msg: plainType(msg)}
}

var unmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) (`[^`]*` )?into (\\S+)$")

// plainType words YAML's type errors without Go's type names: "`many` is
// not a number" rather than "cannot unmarshal !!str `many` into int".
func plainType(msg string) string {
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	what := strings.TrimSpace(m[2])
	if what == "" {
		what = map[string]string{"seq": "a list", "map": "a mapping", "str": "a text", "int": "a number", "bool": "true or false"}[m[1]]
		if what == "" {
			what = "this value"
		}
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"), strings.HasPrefix(want, "float"):
		want = "a number"
	case want == "bool":
		want = "true or false"
	case want == "string":
		want = "a text"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["):
		want = "a mapping (key: value)"
	default:
		want = "a " + strings.TrimPrefix(want, "runbooks.")
	}
	return fmt.Sprintf("%s where %s is expected", what, want)
}

// stepNodes finds each item under a top-level key ("steps", "rollback").
func stepNodes(root *yaml.Node, key string) []*yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	if steps := mapValue(root.Content[0], key); steps != nil {
		return steps.Content
	}
	return nil
}

// knownParams are filled at run time from the incident and its alert even
// when a runbook gives no default.
var knownParams = map[string]bool{"namespace": true, "deployment": true, "service": true, "pod": true,
	"alertname": true, "instance": true, "job": true, "container": true}

// WebLink reports whether s is an http(s) address with a host: what a chat
// bookmark or a link may point to.
func WebLink(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !strings.ContainsAny(s, " <>|\t\n")
}

func validate(rb *Runbook, opt Options, place func(step, line, col int) (int, int), top func(path ...string) int) Problems {
	var ps Problems
	add := func(line int, format string, args ...any) {
		ps = append(ps, Problem{File: rb.File, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	if !validName.MatchString(rb.Name) {
		add(top("name"), "name %q: use lower-case letters, digits and dashes", rb.Name)
	}
	if strings.TrimSpace(rb.Title) == "" {
		add(top("title"), "a runbook needs a title")
	}
	if len(rb.Steps) == 0 {
		add(top("steps"), "a %s needs steps", map[bool]string{false: "runbook", true: "release procedure"}[opt.Release])
	}
	if rb.URL != "" && !WebLink(rb.URL) {
		add(top("url"), "url %q: give an http(s) address, like https://wiki.example.com/runbooks/%s", rb.URL, rb.Name)
	}
	switch empty := len(rb.Match.Alerts)+len(rb.Match.Labels)+len(rb.Match.Keywords) == 0; {
	case empty && !opt.Release:
		add(top("match"), "match is empty: give alerts, labels or keywords, or nothing will ever offer this runbook")
	case !empty && opt.Release:
		add(top("match"), "a release procedure matches no incident: it is started by release start")
	}
	validateRelease(rb, opt, top, add)
	allowed := map[string]bool{}
	for _, ns := range opt.Namespaces {
		allowed[ns] = true
	}
	if ns := rb.Params["namespace"]; ns != "" && len(allowed) > 0 && !allowed[ns] {
		add(top("params", "namespace"), "params.namespace %q is outside the allowed namespaces (%s)", ns, strings.Join(opt.Namespaces, ", "))
	}
	all := append(slices.Clone(rb.Steps), rb.Rollback...)
	defer func() { // the defaults validation filled in (namespace, range) are kept
		copy(rb.Steps, all)
		copy(rb.Rollback, all[len(rb.Steps):])
	}()
	for i := range all {
		s := &all[i]
		line := s.Line
		if strings.TrimSpace(s.Name) == "" {
			add(line, "step %d needs a name", i+1)
		}
		switch {
		case s.Kind == "":
			add(line, "step %q needs a kind", s.Name)
		case s.Kind == "shell" || s.Kind == "exec" || s.Kind == "command" || s.Kind == "script":
			add(line, "step %q: kind %q: runbooks cannot run shell commands", s.Name, s.Kind)
		case !kinds[s.Kind]:
			add(line, "step %q: unknown kind %q", s.Name, s.Kind)
		}
		for _, p := range s.Placeholders() {
			if _, ok := rb.Params[p]; !ok && !knownParams[p] && !(opt.Release && releaseParams[p]) {
				add(line, "step %q uses {{%s}}, which is not a parameter: add it under params", s.Name, p)
			}
		}
		if s.Kind.Kube() && s.Namespace == "" {
			s.Namespace = "{{namespace}}"
		}
		if ns := s.Namespace; ns != "" && !strings.Contains(ns, "{{") && len(allowed) > 0 && !allowed[ns] {
			add(line, "step %q targets namespace %q, outside the allowed namespaces (%s)", s.Name, ns, strings.Join(opt.Namespaces, ", "))
		}
		stepProblem := func(format string, args ...any) { add(line, "step %q: "+format, append([]any{s.Name}, args...)...) }
		validateStep(s, stepProblem)
		validateReleaseStep(s, stepProblem)
		if s.Kind == PromQL || s.Kind == PromQLRange {
			for _, e := range promqlErrors(s.Query) {
				l, c := line, 0
				if i < len(rb.Steps) { // a rollback step's error is at its step's line
					l, c = place(i, e.line, e.col)
				}
				ps = append(ps, Problem{File: rb.File, Line: cmp.Or(l, line), Col: c, Msg: fmt.Sprintf("step %q: bad PromQL: %s", s.Name, e.msg)})
			}
		}
	}
	return ps
}

type queryError struct {
	line, col int // in the query, from 0
	msg       string
}

// promqlErrors parses a query as Prometheus itself does, with each
// {{param}} replaced by as many x's, so positions stay where they are in
// the file.
func promqlErrors(query string) []queryError {
	if strings.TrimSpace(query) == "" {
		return nil
	}
	q := placeholder.ReplaceAllStringFunc(query, func(m string) string { return strings.Repeat("x", len(m)) })
	_, err := parser.ParseExpr(q)
	var errs parser.ParseErrors
	if !errors.As(err, &errs) {
		if err != nil {
			return []queryError{{msg: err.Error()}}
		}
		return nil
	}
	var out []queryError
	for _, e := range errs {
		start := min(int(e.PositionRange.Start), len(q))
		before := q[:start]
		line := strings.Count(before, "\n")
		col := utf8.RuneCountInString(before[strings.LastIndex(before, "\n")+1:])
		out = append(out, queryError{line, col, e.Err.Error()})
	}
	return out
}

func validateStep(s *Step, add func(string, ...any)) {
	switch s.Kind {
	case PromQL, PromQLRange:
		if strings.TrimSpace(s.Query) == "" {
			add("needs a query")
			break
		}
		if t := s.Thresholds; t != nil && ((!t.Below && t.Warning > t.Critical) || (t.Below && t.Warning < t.Critical)) {
			add("thresholds: warning %v is past critical %v", t.Warning, t.Critical)
		}
		if s.Kind == PromQLRange {
			if s.Range == "" {
				s.Range = "1h"
			}
			if _, err := model.ParseDuration(s.Range); err != nil {
				add("range %q: %v", s.Range, err)
			}
		}
	case RolloutHistory, Restart, Undo:
		if s.Deployment == "" {
			add("needs a deployment")
		}
		if s.Revision < 0 {
			add("revision %d: use 0 for the previous one, or a revision number", s.Revision)
		}
	case Scale:
		if s.Deployment == "" {
			add("needs a deployment")
		}
		if s.Replicas < 0 || s.Replicas > 1000 {
			add("replicas %d: between 0 and 1000", s.Replicas)
		}
	case Logs, PodStatus:
		if s.Deployment == "" && s.Pod == "" {
			add("needs a deployment or a pod")
		}
		if s.Tail < 0 || s.Tail > 5000 {
			add("tail %d: between 1 and 5000", s.Tail)
		}
	case Switch:
		if s.Service == "" || len(s.Selector) == 0 {
			add("needs a service and the selector to switch it to")
		}
	case Manual:
		if strings.TrimSpace(s.Text) == "" {
			add("a manual step needs text saying what to do")
		}
	}
}

// Match picks the runbook for an incident: its alert name first, then its
// labels, then the keywords in its title. It returns nil when none fits.
func (s *Set) Match(alertname string, labels map[string]string, title string) *Runbook {
	if s == nil {
		return nil
	}
	type scored struct {
		rb    *Runbook
		score int
	}
	var best []scored
	low := strings.ToLower(title)
	for _, rb := range s.list {
		score := 0
		for _, a := range rb.Match.Alerts {
			if alertname != "" && strings.EqualFold(a, alertname) {
				score += 100
			}
		}
		if len(rb.Match.Labels) > 0 {
			all := true
			for k, v := range rb.Match.Labels {
				if labels[k] != v {
					all = false
				}
			}
			if all {
				score += 10
			}
		}
		for _, k := range rb.Match.Keywords {
			if k != "" && strings.Contains(low, strings.ToLower(k)) {
				score++
			}
		}
		if score > 0 {
			best = append(best, scored{rb, score})
		}
	}
	if len(best) == 0 {
		return nil
	}
	sort.SliceStable(best, func(i, j int) bool { return best[i].score > best[j].score })
	return best[0].rb
}
