package statuspage_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/statuspage"
)

var (
	ctx   = context.Background()
	alice = incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}
	t0    = time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
)

const hostileTitle = `Checkout <script>alert(1)</script> errors`
const hostileMessage = `Payments fail for <b>some</b> EU cards & we're on it <img src=x onerror=alert(2)>`

type fixture struct {
	store *boltstore.Store
	svc   *incidents.Service
	clock *incidents.ManualClock
	srv   *httptest.Server
}

// newFixture is a store with a history a status page must get right: a
// past published incident, a current one with hostile public text, and
// three that must never show (unpublished, private, a drill).
func newFixture(t testing.TB, subs ...incidents.Subscription) *fixture {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{Subscriptions: subs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := incidents.NewManualClock(t0.Add(-10 * 24 * time.Hour))
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Clock: clock, Logger: quiet})
	f := &fixture{store: store, svc: svc, clock: clock}
	declare := func(d incidents.Declaration) *incidents.Incident {
		inc, err := svc.Declare(ctx, d, alice)
		if err != nil {
			t.Fatal(err)
		}
		return inc
	}
	search := declare(incidents.Declaration{Title: "search latency", Service: "search", Signals: incidents.Signals{Explicit: incidents.P3}})
	f.must(t)(svc.Publish(ctx, search.ID, incidents.Investigating, "Search is slower than usual.", -1, alice))
	clock.Advance(2 * time.Hour)
	f.must(t)(svc.Publish(ctx, search.ID, incidents.Resolved, "Search is back to normal.", -1, alice))
	svc.Resolve(ctx, search.ID, "", alice)

	clock.Advance(t0.Add(-time.Hour).Sub(clock.Now()))
	checkout := declare(incidents.Declaration{Title: "checkout 5xx from the payment gateway", Service: "checkout", Signals: incidents.Signals{Explicit: incidents.P2}})
	f.must(t)(svc.SetPublicTitle(ctx, checkout.ID, hostileTitle, alice))
	f.must(t)(svc.Publish(ctx, checkout.ID, incidents.Identified, hostileMessage, -1, alice))
	declare(incidents.Declaration{Title: "SECRET internal db failover", Service: "api", Signals: incidents.Signals{Explicit: incidents.P1}})
	declare(incidents.Declaration{Title: "PRIVATE breach", Service: "api", Private: true, Signals: incidents.Signals{Explicit: incidents.P1}})
	declare(incidents.Declaration{Title: "DRILL game day", Service: "api", Drill: true, Signals: incidents.Signals{Explicit: incidents.P1}})
	clock.Advance(t0.Sub(clock.Now()))
	f.srv = httptest.NewServer(statuspage.Handler(statuspage.Config{Source: svc, Title: "Acme status", Components: []string{"checkout", "search", "api"}, Logger: quiet}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) must(t testing.TB) func(*incidents.Incident, error) {
	return func(_ *incidents.Incident, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) get(t testing.TB, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestOnlyWhatWasPublished: the page, the JSON and the feed show the
// published incidents with what was published, the components' states from
// them alone, and nothing of the unpublished, private or drill incidents.
func TestOnlyWhatWasPublished(t *testing.T) {
	f := newFixture(t)
	resp, html := f.get(t, "/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	for _, leak := range []string{"SECRET", "PRIVATE", "DRILL", "checkout 5xx from the payment gateway", "@alice", "<script>alert", "<b>some</b>", "<img"} {
		if strings.Contains(html, leak) {
			t.Errorf("the page shows %q", leak)
		}
	}
	for _, want := range []string{"Acme status", "Partial outage", "Checkout &lt;script&gt;alert(1)&lt;/script&gt; errors", "&lt;b&gt;some&lt;/b&gt; EU cards &amp; we&#39;re on it",
		"Search is back to normal.", `<meta name="viewport"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}

	_, body := f.get(t, "/status.json")
	var doc struct {
		Status     string `json:"status"`
		Components []struct {
			Name, Status string
			History      []struct{ Date, Status string }
		}
		Incidents []struct {
			ID, Title, Status, Impact string
			Updates                   []struct{ Status, Message string }
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err, body)
	}
	states := map[string]string{}
	for _, c := range doc.Components {
		states[c.Name] = c.Status
		if len(c.History) != 90 || c.History[89].Date != "2026-11-26" {
			t.Errorf("%s history: %d days, last %v", c.Name, len(c.History), c.History[len(c.History)-1])
		}
	}
	if doc.Status != "partial_outage" || states["checkout"] != "partial_outage" || states["search"] != "operational" || states["api"] != "operational" {
		t.Errorf("states: overall %s, %v", doc.Status, states)
	}
	search := doc.Components[1].History
	if search[79].Status != "degraded" || search[78].Status != "operational" || search[80].Status != "operational" {
		t.Errorf("search's bars around 10 days ago: %v %v %v", search[78], search[79], search[80])
	}
	if len(doc.Incidents) != 2 || doc.Incidents[0].Title != hostileTitle || doc.Incidents[0].Updates[0].Message != hostileMessage || strings.Contains(body, "SECRET") {
		t.Errorf("incidents %+v", doc.Incidents)
	}

	_, feed := f.get(t, "/status/feed.atom")
	var atom struct {
		Title   string `xml:"title"`
		Entries []struct {
			ID      string `xml:"id"`
			Title   string `xml:"title"`
			Updated string `xml:"updated"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(feed), &atom); err != nil {
		t.Fatal(err, feed)
	}
	if len(atom.Entries) != 3 || atom.Entries[0].Content != hostileMessage || !strings.HasPrefix(atom.Entries[0].Title, hostileTitle) || atom.Entries[1].Content != "Search is back to normal." {
		t.Errorf("feed %+v", atom.Entries)
	}
	if strings.Contains(feed, "<script>") || strings.Contains(feed, "SECRET") {
		t.Errorf("feed leaks:\n%s", feed)
	}

	if resp, page := f.get(t, "/status/incidents/INC-2"); resp.StatusCode != 200 || !strings.Contains(page, "&lt;b&gt;some&lt;/b&gt;") {
		t.Errorf("INC-2's page: %d", resp.StatusCode)
	}
	for _, key := range []string{"INC-3", "INC-4", "INC-5", "INC-99", "2", "x"} {
		if resp, page := f.get(t, "/status/incidents/"+key); resp.StatusCode != 404 || strings.Contains(page, "SECRET") || strings.Contains(page, "PRIVATE") {
			t.Errorf("%s: %d %q", key, resp.StatusCode, page)
		}
	}
	if resp, _ := f.get(t, "/admin/backup"); resp.StatusCode != 404 {
		t.Errorf("the status listener serves /admin: %d", resp.StatusCode)
	}
	if resp, err := http.Post(f.srv.URL+"/status", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %v %v", resp, err)
	}
}

// TestCachingHeaders: an ETag of the body, answered 304 while nothing
// changed and 200 with a new one once an update is published.
func TestCachingHeaders(t *testing.T) {
	f := newFixture(t)
	resp, _ := f.get(t, "/status")
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "public, max-age=30" {
		t.Fatalf("headers %v", resp.Header)
	}
	if again, body := f.get(t, "/status", "If-None-Match", etag); again.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("unchanged: %d", again.StatusCode)
	}
	f.clock.Advance(time.Minute)
	f.must(t)(f.svc.Publish(ctx, 2, incidents.Monitoring, "A fix is out; we are watching.", -1, alice))
	if changed, body := f.get(t, "/status", "If-None-Match", etag); changed.StatusCode != 200 || changed.Header.Get("ETag") == etag || !strings.Contains(body, "A fix is out") {
		t.Errorf("after an update: %d %s", changed.StatusCode, changed.Header.Get("ETag"))
	}
}
