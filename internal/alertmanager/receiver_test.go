package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/alertmanager"
	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/tally"
)

const samples = "../../../shared/samples/alertmanager/"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(samples + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fixture struct {
	svc   *incidents.Service
	srv   *httptest.Server
	token string
}

func newFixture(t testing.TB, token string) *fixture {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet})
	rcv := alertmanager.NewReceiver(svc, token, quiet)
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rcv.UseRunbooks(set)
	srv := httptest.NewServer(rcv)
	t.Cleanup(func() { srv.Close(); store.Close() })
	return &fixture{svc: svc, srv: srv, token: token}
}

func (f *fixture) post(t testing.TB, body []byte) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func (f *fixture) events(t testing.TB, id int64, kind incidents.EventKind) []incidents.Event {
	var out []incidents.Event
	f.svc.Timeline(context.Background(), id, func(ev incidents.Event) error {
		if ev.Kind == kind {
			out = append(out, ev)
		}
		return nil
	})
	return out
}

func TestGroupLifecycleFromSamples(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	code, out := f.post(t, read(t, "alertmonitor_firing_3_alerts.json"))
	if code != 200 || out["incident"] != "INC-1" || out["created"] != true {
		t.Fatalf("firing: %d %v", code, out)
	}
	inc, _ := f.svc.Get(ctx, 1)
	if inc.Title != "ICMP ping failed" || inc.Severity != incidents.P2 || !strings.Contains(inc.SeverityReason, "severity=major") ||
		inc.Service != "blackbox-icmp" || inc.Lead() != "" || inc.Links["alertmanager"] == "" {
		t.Errorf("declared %+v", inc)
	}
	if n := len(f.events(t, 1, incidents.EventAlert)); n != 3 {
		t.Errorf("%d alert events, want 3", n)
	}
	// Alertmanager repeats the group: nothing new is recorded.
	if _, out := f.post(t, read(t, "alertmonitor_firing_3_alerts.json")); out["events"] != float64(0) {
		t.Errorf("repeat: %v", out)
	}
	code, out = f.post(t, read(t, "alertmonitor_resolved_3_alerts_handedited.json"))
	if code != 200 || out["incident"] != "INC-1" || out["created"] != false {
		t.Fatalf("resolved: %d %v", code, out)
	}
	if n := len(f.events(t, 1, incidents.EventAlert)); n != 6 {
		t.Errorf("%d alert events after resolution, want 6", n)
	}
	if got := f.events(t, 1, incidents.EventAlertsResolved); len(got) != 1 {
		t.Errorf("alerts_resolved events %d", len(got))
	}
	if inc, _ := f.svc.Get(ctx, 1); !inc.Open() {
		t.Error("resolving the alerts resolved the incident: people decide that")
	}
}

func TestSeverityAndTitleFromLabels(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		file  string
		title string
		sev   incidents.Severity
	}{
		{"alertmanager_bot_firing.json", "Something is on fire", incidents.P2},
		{"zulip_firing_2_alerts.json", "High CPU core temperature", incidents.P2},
	}
	for i, tt := range tests {
		_, out := f.post(t, read(t, tt.file))
		inc, _ := f.svc.Get(context.Background(), int64(i+1))
		if out["created"] != true || inc.Title != tt.title || inc.Severity != tt.sev {
			t.Errorf("%s: %v → %q %s (%s)", tt.file, out, inc.Title, inc.Severity, inc.SeverityReason)
		}
	}
	// The zulip sample is a CPU alert: the CPU runbook is attached.
	if inc, _ := f.svc.Get(context.Background(), 2); inc.Links["runbook"] != "high-cpu" {
		t.Errorf("runbook attached to %q: %q", inc.Title, inc.Links["runbook"])
	}
	// A resolved group with no open incident declares nothing.
	f2 := newFixture(t, "")
	if code, out := f2.post(t, read(t, "alertmanager_bot_resolved.json")); code != 200 || out["ignored"] == nil {
		t.Errorf("lone resolved: %d %v", code, out)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, "s3cret")
	body := read(t, "alertmanager_bot_firing.json")
	send := func(b []byte, auth string) int {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(b))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name string
		body []byte
		auth string
		code int
	}{
		{"no token", body, "", 401},
		{"wrong token", body, "Bearer nope", 401},
		{"over the body limit", bytes.Repeat([]byte(" "), alertmanager.MaxBody+1), "Bearer s3cret", 413},
		{"not json", []byte("{"), "Bearer s3cret", 400},
		{"version 3", bytes.Replace(body, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), "Bearer s3cret", 400},
		{"no alerts", []byte(`{"version":"4","groupKey":"g","status":"firing","alerts":[]}`), "Bearer s3cret", 400},
		{"bad alert status", []byte(`{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"burning"}]}`), "Bearer s3cret", 400},
		{"good", body, "Bearer s3cret", 200},
		{"the scheme in lower case", body, "bearer s3cret", 200}, // RFC 7235: case-insensitive; a 401 would lose the alert
	}
	var c tally.Count
	for _, tt := range tests {
		code := send(tt.body, tt.auth)
		if code != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.code)
		}
		c.Try(code/100 == 2)
	}
	if all, _ := f.svc.List(context.Background(), incidents.Filter{All: true}); len(all) != 1 { // both good posts are one group
		c.Lost = 1 - min(len(all), 1)
		t.Errorf("%d incidents for one accepted group", len(all))
	}
	c.Report(t)
}

// storm builds n notifications across groups, each with one new alert.
func storm(groups, perGroup int) [][]byte {
	var out [][]byte
	for a := 0; a < perGroup; a++ {
		for g := 0; g < groups; g++ {
			m := map[string]any{
				"version": "4", "groupKey": fmt.Sprintf(`{}:{alertname="Storm%d"}`, g), "status": "firing", "receiver": "sitrep",
				"groupLabels":  map[string]string{"alertname": fmt.Sprintf("Storm%d", g)},
				"commonLabels": map[string]string{"alertname": fmt.Sprintf("Storm%d", g), "severity": "critical"},
				"alerts": []map[string]any{{"status": "firing", "fingerprint": fmt.Sprintf("g%d-a%d", g, a),
					"labels":   map[string]string{"alertname": fmt.Sprintf("Storm%d", g), "instance": fmt.Sprintf("i%d", a)},
					"startsAt": "2026-11-26T03:00:00Z"}},
			}
			b, _ := json.Marshal(m)
			out = append(out, b)
		}
	}
	return out
}

// TestAlertStorm: 1,000 alerts across 20 groups, sent concurrently, make 20
// incidents and every alert answered 2xx is on a timeline.
func TestAlertStorm(t *testing.T) {
	f := newFixture(t, "")
	msgs := storm(20, 50)
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := map[string]bool{}
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if code, _ := f.post(t, msgs[i]); code == 200 {
					var m alertmanager.Message
					json.Unmarshal(msgs[i], &m)
					mu.Lock()
					answered[m.Alerts[0].Fingerprint] = true
					mu.Unlock()
				}
			}
		}()
	}
	for i := range msgs {
		work <- i
	}
	close(work)
	wg.Wait()
	all, _ := f.svc.List(context.Background(), incidents.Filter{All: true})
	if len(all) != 20 {
		t.Fatalf("%d incidents, want 20", len(all))
	}
	seen := map[string]bool{}
	for _, inc := range all {
		for _, ev := range f.events(t, inc.ID, incidents.EventAlert) {
			seen[ev.Fields["fingerprint"]] = true
		}
	}
	lost := 0
	for fp := range answered {
		if !seen[fp] {
			lost++
		}
	}
	if len(answered) != 1000 || lost != 0 {
		t.Errorf("%d alerts answered 2xx, %d of them not on a timeline", len(answered), lost)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"alertmanager_bot_firing.json", "alertmonitor_firing_3_alerts.json", "zulip_firing_2_alerts.json", "alertmonitor_resolved_3_alerts_handedited.json"} {
		f.Add(read(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := alertmanager.Parse(body)
		if err != nil {
			return
		}
		if m.GroupKey == "" || len(m.Alerts) == 0 || m.Title() == "" {
			t.Fatalf("accepted %+v", m)
		}
		for _, a := range m.Alerts {
			if a.Fingerprint == "" {
				t.Fatal("an alert without a fingerprint")
			}
		}
	})
}

// TestBigGroupsAreNotRefused: the biggest outages make the biggest groups.
// A group of 5,000 alerts (over 1 MiB, where Sitrep used to answer 413, and
// over 1,000 alerts, where it answered 400 — Alertmanager does not retry
// either) declares its incident; every alert's state is kept, the timeline
// gets MaxAlertEvents of them and one line for the rest; a summary of 300
// characters becomes a title cut to fit, kept whole on the timeline.
func TestBigGroupsAreNotRefused(t *testing.T) {
	f := newFixture(t, "")
	var alerts []map[string]any
	for i := 0; i < 5000; i++ {
		alerts = append(alerts, map[string]any{"status": "firing", "fingerprint": fmt.Sprintf("fp%05d", i),
			"labels":      map[string]string{"alertname": "NodeDown", "instance": fmt.Sprintf("node-%05d.eu-west-1.compute.internal:9100", i)},
			"annotations": map[string]string{"summary": "node " + strings.Repeat("very ", 20) + "down", "description": strings.Repeat("the node stopped answering its health checks; ", 3)},
			"startsAt":    "2026-12-01T03:00:00Z", "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0"})
	}
	summary := strings.Repeat("Every node in eu-west-1 stopped answering ", 8)
	body, _ := json.Marshal(map[string]any{"version": "4", "groupKey": `{}:{alertname="NodeDown"}`, "status": "firing", "receiver": "sitrep",
		"groupLabels": map[string]string{"alertname": "NodeDown"}, "commonLabels": map[string]string{"alertname": "NodeDown", "severity": "critical"},
		"commonAnnotations": map[string]string{"summary": summary}, "alerts": alerts})
	if len(body) <= 1<<20 {
		t.Fatalf("the group is %d bytes; the test needs it over 1 MiB", len(body))
	}
	code, out := f.post(t, body)
	if code != 200 || out["created"] != true {
		t.Fatalf("a group of 5,000 alerts (%d bytes): %d %v", len(body), code, out)
	}
	inc, err := f.svc.Get(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	c := tally.Count{Tried: 5000, Accepted: 5000, Lost: 5000 - inc.AlertsFiring()} // each alert of the group
	c.Report(t)
	alertEvents := f.events(t, 1, incidents.EventAlert)
	if len(alertEvents) != alertmanager.MaxAlertEvents+1 || alertEvents[len(alertEvents)-1].Fields["folded"] != fmt.Sprint(5000-alertmanager.MaxAlertEvents) {
		t.Errorf("%d alert events, the last %+v", len(alertEvents), alertEvents[len(alertEvents)-1])
	}
	if n := len([]rune(inc.Title)); n != incidents.MaxTitle || !strings.HasSuffix(inc.Title, "…") {
		t.Errorf("title of %d runes: %q", n, inc.Title)
	}
	if d := f.events(t, 1, incidents.EventDeclared); len(d) != 1 || d[0].Message != strings.TrimSpace(summary) {
		t.Errorf("the declared event does not keep the whole summary: %+v", d)
	}
}

// TestAlertsOfAGroupAreToldApart: the three alerts of a real group differ by
// instance; each timeline line names its own.
func TestAlertsOfAGroupAreToldApart(t *testing.T) {
	f := newFixture(t, "")
	if code, out := f.post(t, read(t, "alertmonitor_firing_3_alerts.json")); code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	seen := map[string]bool{}
	for _, ev := range f.events(t, 1, incidents.EventAlert) {
		if seen[ev.Message] || !strings.Contains(ev.Message, "instance=") {
			t.Errorf("alert line %q: repeated, or without what tells it apart", ev.Message)
		}
		seen[ev.Message] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct alert lines, want 3", len(seen))
	}
}
