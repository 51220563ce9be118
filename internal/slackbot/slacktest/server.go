// Package slacktest is a Slack-compatible server for tests: the Web API
// methods Sitrep calls, apps.connections.open, and a socket-mode WebSocket
// that sends envelopes and reads acks. Faults (429 with Retry-After, 5xx,
// Slack errors, a dropped socket) can be injected per method. It keeps the
// workspace's state — channels, members, topics, messages, pins — so tests
// assert on what a person in Slack would see.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Tokens the server accepts.
const (
	BotToken = "xoxb-test-bot-token"
	AppToken = "xapp-test-app-token"
	BotUser  = "USITREPBOT"
)

// Server is the fake workspace.
type Server struct {
	URL string // the Web API base to give as SLACK_API_URL (ends in /api/)
	srv *httptest.Server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	calls     []Call
	channels  map[string]*Channel
	byName    map[string]string
	messages  map[string][]*Message
	ephemeral []Message
	responses []Response
	views     []json.RawMessage
	files     map[string]*File
	groups    map[string][]string
	faults    map[string][]Fault
	limits    map[string]*limit
	scale     float64   // per-channel chat.postMessage limits at this scale; 0 = none
	outage    time.Time // every Web API call answers 503 until then
	revoked   bool
	seq       int
	conns     map[*websocket.Conn]*sync.Mutex
	acks      map[string]Ack
	sent      map[string]time.Time
	connects  int
}

// Call is one Web API request.
type Call struct {
	Method string
	Params url.Values
	At     time.Time
	Status int // the HTTP status the server answered
}

// Channel is a conversation in the workspace.
type Channel struct {
	ID, Name, Topic string
	Creator         string
	Created         int64 // unix seconds
	Members         []string
	Pins            []string // message timestamps
	Archived        bool
	Private         bool // only its members see it
	Bookmarks       []Bookmark
}

// Bookmark is a link in a channel's bookmarks bar.
type Bookmark struct {
	ID, Title, Link string
}

// Message is a posted message; Updates counts chat.update calls on it.
type Message struct {
	Channel, TS, Text, User, ThreadTS string
	Blocks                            json.RawMessage
	Updates                           int
}

// Response is a post to a response_url.
type Response struct {
	Path string
	Body map[string]any
}

// File is an uploaded file; Channel is set once the upload is completed.
type File struct {
	ID, Name, Title, Channel string
	Content                  []byte
}

// Fault is what a method answers instead of its normal reply.
type Fault struct {
	Status     int    // HTTP status, e.g. 429 or 500
	RetryAfter string // Retry-After header for 429
	Error      string // a Slack error with HTTP 200 ("internal_error")
	// Lost: the method does its work, then the answer is lost (Status is
	// sent instead): a call Slack completed whose caller never heard.
	Lost bool
}

// New starts a server that enforces Slack's tiers as they are.
func New() *Server { return NewScaled(1) }

// NewScaled starts a server whose tiers are scale times Slack's: for tests
// that run Sitrep's sender at the same scale, so the server stays exactly as
// strict relative to it. Bursts are a tenth of a minute's calls.
func NewScaled(scale float64) *Server {
	s := newServer()
	s.scale = scale
	for method, perMin := range Tiers {
		s.limits[method] = newLimit(perMin, scale)
	}
	return s
}

func newServer() *Server {
	s := &Server{
		changed: make(chan struct{}), channels: map[string]*Channel{}, byName: map[string]string{},
		messages: map[string][]*Message{}, files: map[string]*File{}, groups: map[string][]string{}, faults: map[string][]Fault{}, limits: map[string]*limit{}, conns: map[*websocket.Conn]*sync.Mutex{}, acks: map[string]Ack{}, sent: map[string]time.Time{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.api)
	mux.HandleFunc("/respond/", s.respond)
	mux.HandleFunc("/link", s.link)
	mux.HandleFunc("/upload/", s.upload)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/api/"
	return s
}

// Close stops the server and drops every socket.
func (s *Server) Close() {
	s.Disconnect()
	s.srv.Close()
}

// ResponseURL is a response_url served by this server.
func (s *Server) ResponseURL(name string) string { return s.srv.URL + "/respond/" + name }

// Fail makes the next calls of method answer with the faults, in order.
func (s *Server) Fail(method string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], faults...)
}

// Revoke makes every token invalid (token_revoked) until Restore.
func (s *Server) Revoke(revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = revoked
}

// UserGroup defines a user group and its members.
func (s *Server) UserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = members
}

// CreateChannel adds a public channel as if a person had made it and
// invited Sitrep's bot (as the announce channel must be: without
// chat:write.public the bot posts only where it is a member).
func (s *Server) CreateChannel(name string, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(name, append([]string{BotUser}, members...)).ID
}

// CreateChannelWithoutBot adds a channel Sitrep's bot is not in: it may
// not post there, and a private one it does not see at all.
func (s *Server) CreateChannelWithoutBot(name string, private bool, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.create(name, members)
	ch.Private = private
	return ch.ID
}

func (s *Server) create(name string, members []string) *Channel {
	s.seq++
	ch := &Channel{ID: fmt.Sprintf("C%05d", s.seq), Name: name, Members: members, Created: time.Now().Unix()}
	s.channels[ch.ID] = ch
	s.byName[name] = ch.ID
	return ch
}

// ChannelID is the id of the channel called name, or "".
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// PostAs adds a message from a person (not through the bot) and returns its ts.
func (s *Server) PostAs(user, channel, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &Message{Channel: channel, TS: s.ts(), Text: text, User: user}
	s.messages[channel] = append(s.messages[channel], m)
	s.signal()
	return m.TS
}

func (s *Server) ts() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", 1764126000+s.seq, s.seq)
}

func (s *Server) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

var channelName = regexp.MustCompile(`^[a-z0-9_-]{1,80}$`)

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	params := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		json.Unmarshal(body, &m)
		for k, v := range m {
			if str, ok := v.(string); ok {
				params.Set(k, str)
			} else {
				b, _ := json.Marshal(v)
				params.Set(k, string(b))
			}
		}
	} else {
		params, _ = url.ParseQuery(string(body))
	}
	for k, v := range r.URL.Query() { // GET methods
		params[k] = v
	}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		token = params.Get("token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.signal()
	call := Call{Method: method, Params: params, At: time.Now(), Status: 200}
	defer func() { s.calls = append(s.calls, call) }()
	if q := s.faults[method]; len(q) > 0 {
		f := q[0]
		s.faults[method] = q[1:]
		if f.Lost {
			s.method(method, params)
		}
		if f.Status != 0 {
			call.Status = f.Status
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			w.WriteHeader(f.Status)
			io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			return
		}
		reply(w, map[string]any{"ok": false, "error": f.Error})
		return
	}
	if method != "apps.connections.open" && time.Now().Before(s.outage) {
		call.Status = http.StatusServiceUnavailable
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"ok":false,"error":"service_unavailable"}`)
		return
	}
	l := s.limits[method]
	if method == "chat.postMessage" && s.scale > 0 {
		key := method + " " + params.Get("channel")
		if l = s.limits[key]; l == nil {
			l = newLimit(PostPerChannel, s.scale)
			s.limits[key] = l
		}
	}
	if l != nil {
		if ok, after := l.allow(time.Now()); !ok {
			call.Status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(max(after, 1)))
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			return
		}
	}
	want := BotToken
	if method == "apps.connections.open" {
		want = AppToken
	}
	switch {
	case s.revoked:
		reply(w, map[string]any{"ok": false, "error": "token_revoked"})
		return
	case token != want:
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	reply(w, s.method(method, params))
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
