package statuspage

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

//go:embed page.html
var files embed.FS

var pages = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string { return t.UTC().Format("Jan 2, 15:04 UTC") },
	"day":   func(t time.Time) string { return t.Format("Jan 2") },
	"label": func(s incidents.Status) string {
		return strings.ToUpper(s.Label()[:1]) + strings.ToLower(s.Label()[1:])
	},
}).ParseFS(files, "page.html"))

// Config is a Handler's complete configuration.
type Config struct {
	Source     Source
	Title      string   // the page's heading; default "Status"
	Components []string // the services the page reports on
	Logger     *slog.Logger
}

// Handler serves /status, /status.json, /status/feed.atom and
// /status/incidents/INC-n; nothing else (mount it on its own listener:
// SITREP_STATUS_LISTEN, apart from the webhooks and /admin).
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request, render func(*Page) (string, []byte, error)) {
		p, err := Build(r.Context(), cfg.Source, cfg.Title, cfg.Components)
		if err != nil {
			cfg.Logger.Error("status page not built", "err", err)
			http.Error(w, "the status page is unavailable; try again shortly", http.StatusServiceUnavailable)
			return
		}
		ctype, body, err := render(p)
		if err != nil {
			cfg.Logger.Error("status page not rendered", "err", err)
			http.Error(w, "the status page is unavailable; try again shortly", http.StatusInternalServerError)
			return
		}
		send(w, r, ctype, body)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, func(p *Page) (string, []byte, error) {
			b, err := execute("page", p)
			return "text/html; charset=utf-8", b, err
		})
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, func(p *Page) (string, []byte, error) {
			b, err := json.MarshalIndent(document(p), "", "  ")
			return "application/json", b, err
		})
	})
	mux.HandleFunc("GET /status/feed.atom", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, func(p *Page) (string, []byte, error) {
			b, err := atom(p) // links relative to the feed: never built from the request's Host
			return "application/atom+xml; charset=utf-8", b, err
		})
	})
	mux.HandleFunc("GET /status/incidents/{key}", func(w http.ResponseWriter, r *http.Request) {
		inc, ok, err := Find(r.Context(), cfg.Source, r.PathValue("key"))
		switch {
		case err != nil:
			cfg.Logger.Error("status page not built", "err", err)
			http.Error(w, "the status page is unavailable; try again shortly", http.StatusServiceUnavailable)
			return
		case !ok:
			http.Error(w, "no such incident on this status page", http.StatusNotFound)
			return
		}
		p := &Page{Title: cmp.Or(cfg.Title, "Status"), Updated: inc.Updates[0].At} // the heading and the footer: nothing else is read
		b, err := execute("incident", struct {
			Page     *Page
			Incident Incident
		}{p, inc})
		if err != nil {
			http.Error(w, "the status page is unavailable; try again shortly", http.StatusInternalServerError)
			return
		}
		send(w, r, "text/html; charset=utf-8", b)
	})
	return mux
}

func execute(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	err := pages.ExecuteTemplate(&b, name, data)
	return b.Bytes(), err
}

// send answers with caching a CDN and a browser can use: an ETag of the
// body (a 304 when it matches) and a short max-age; no script may run.
func send(w http.ResponseWriter, r *http.Request, ctype string, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=30")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	for _, tag := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t := strings.TrimSpace(tag); t == etag || t == "W/"+etag || t == "*" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", ctype)
	w.Write(body)
}

// document is the page as JSON (/status.json).
func document(p *Page) any {
	type day struct {
		Date   string `json:"date"`
		Status string `json:"status"`
	}
	type component struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		History []day  `json:"history"`
	}
	type update struct {
		At      time.Time `json:"at"`
		Status  string    `json:"status"`
		Message string    `json:"message"`
	}
	type incident struct {
		ID        string     `json:"id"`
		Title     string     `json:"title"`
		Component string     `json:"component,omitempty"`
		Impact    string     `json:"impact"`
		Status    string     `json:"status"`
		Started   time.Time  `json:"started_at"`
		Resolved  *time.Time `json:"resolved_at,omitempty"`
		Updates   []update   `json:"updates"`
	}
	out := struct {
		Title      string      `json:"title"`
		Updated    time.Time   `json:"updated_at,omitzero"`
		Status     string      `json:"status"`
		Components []component `json:"components"`
		Incidents  []incident  `json:"incidents"`
	}{Title: p.Title, Updated: p.Updated, Status: p.Overall.Class(), Components: []component{}, Incidents: []incident{}}
	for _, c := range p.Components {
		jc := component{Name: c.Name, Status: c.State.Class()}
		for _, d := range c.Days {
			jc.History = append(jc.History, day{d.Date.Format(time.DateOnly), d.State.Class()})
		}
		out.Components = append(out.Components, jc)
	}
	for _, i := range append(append([]Incident{}, p.Active...), p.Past...) {
		ji := incident{ID: i.Key, Title: i.Title, Component: i.Component, Impact: i.Impact.Class(), Status: string(i.Status), Started: i.Started, Updates: []update{}}
		if !i.Resolved.IsZero() {
			ji.Resolved = &i.Resolved
		}
		for _, u := range i.Updates {
			ji.Updates = append(ji.Updates, update{u.At, string(u.Status), u.Message})
		}
		out.Incidents = append(out.Incidents, ji)
	}
	return out
}

// atom is the page's updates as an Atom feed, newest first.
func atom(p *Page) ([]byte, error) {
	type link struct {
		Href string `xml:"href,attr"`
		Rel  string `xml:"rel,attr,omitempty"`
	}
	type text struct {
		Type string `xml:"type,attr"`
		Body string `xml:",chardata"`
	}
	type entry struct {
		ID      string `xml:"id"`
		Title   string `xml:"title"`
		Updated string `xml:"updated"`
		Link    link   `xml:"link"`
		Content text   `xml:"content"`
	}
	feed := struct {
		XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
		ID      string   `xml:"id"`
		Title   string   `xml:"title"`
		Updated string   `xml:"updated"`
		Link    []link   `xml:"link"`
		Author  struct {
			Name string `xml:"name"`
		} `xml:"author"`
		Entries []entry `xml:"entry"`
	}{ID: "urn:sitrep:status", Title: p.Title, Updated: p.Updated.UTC().Format(time.RFC3339),
		Link: []link{{Href: "/status"}, {Href: "/status/feed.atom", Rel: "self"}}}
	feed.Author.Name = p.Title
	for _, i := range append(append([]Incident{}, p.Active...), p.Past...) {
		for _, u := range i.Updates {
			feed.Entries = append(feed.Entries, entry{
				ID:      "urn:sitrep:status:" + i.Key + ":" + u.At.UTC().Format(time.RFC3339Nano), // stable: one update, one id
				Title:   i.Title + " — " + u.Status.Label(),
				Updated: u.At.UTC().Format(time.RFC3339),
				Link:    link{Href: "/status/incidents/" + i.Key},
				Content: text{Type: "text", Body: u.Message},
			})
		}
	}
	slices.SortStableFunc(feed.Entries, func(a, b entry) int { return strings.Compare(b.Updated, a.Updated) })
	b, err := xml.MarshalIndent(feed, "", "  ")
	return append([]byte(xml.Header), b...), err
}
