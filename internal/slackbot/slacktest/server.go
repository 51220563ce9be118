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

// CreateChannel adds a channel as if a person had made it.
func (s *Server) CreateChannel(name string, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(name, members).ID
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

func fail(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func channelJSON(ch *Channel) map[string]any {
	return map[string]any{"id": ch.ID, "name": ch.Name, "is_channel": true, "is_member": true, "creator": ch.Creator, "created": ch.Created, "is_archived": ch.Archived,
		"topic": map[string]any{"value": ch.Topic}}
}

// method answers one Web API method (s.mu held).
func (s *Server) method(method string, p url.Values) map[string]any {
	ch := s.channels[p.Get("channel")]
	switch method {
	case "auth.test":
		return map[string]any{"ok": true, "user_id": BotUser, "team": "Sitrep Test", "team_id": "T0TEST", "url": s.srv.URL + "/"}
	case "apps.connections.open":
		return map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link"}
	case "views.open":
		if p.Get("trigger_id") == "" {
			return fail("invalid_trigger_id")
		}
		s.views = append(s.views, json.RawMessage(p.Get("view")))
		return map[string]any{"ok": true, "view": map[string]any{"id": fmt.Sprintf("V%05d", len(s.views))}}
	case "usergroups.users.list":
		members, ok := s.groups[p.Get("usergroup")]
		if !ok {
			return fail("no_such_subteam")
		}
		return map[string]any{"ok": true, "users": members}
	case "files.getUploadURLExternal":
		s.seq++
		f := &File{ID: fmt.Sprintf("F%05d", s.seq), Name: p.Get("filename")}
		s.files[f.ID] = f
		return map[string]any{"ok": true, "file_id": f.ID, "upload_url": s.srv.URL + "/upload/" + f.ID}
	case "files.completeUploadExternal":
		var refs []struct{ ID, Title string }
		json.Unmarshal([]byte(p.Get("files")), &refs)
		var out []any
		for _, r := range refs {
			f := s.files[r.ID]
			if f == nil || s.channels[p.Get("channel_id")] == nil {
				return fail("invalid_arguments")
			}
			f.Title, f.Channel = r.Title, p.Get("channel_id")
			out = append(out, map[string]any{"id": f.ID, "title": f.Title})
		}
		return map[string]any{"ok": true, "files": out}
	case "conversations.list":
		var out []any
		for _, ch := range s.channels {
			if !ch.Archived || p.Get("exclude_archived") != "true" {
				out = append(out, channelJSON(ch))
			}
		}
		return map[string]any{"ok": true, "channels": out, "response_metadata": map[string]any{"next_cursor": ""}}
	case "conversations.create":
		name := p.Get("name")
		if !channelName.MatchString(name) {
			return fail("invalid_name_specials")
		}
		if _, taken := s.byName[name]; taken {
			return fail("name_taken")
		}
		ch := s.create(name, []string{BotUser})
		ch.Creator = BotUser
		return map[string]any{"ok": true, "channel": channelJSON(ch)}
	}
	if ch == nil {
		return fail("channel_not_found")
	}
	switch method {
	case "conversations.invite":
		for _, u := range strings.Split(p.Get("users"), ",") {
			ch.Members = append(ch.Members, u)
		}
		return map[string]any{"ok": true, "channel": channelJSON(ch)}
	case "conversations.setTopic":
		ch.Topic = p.Get("topic")
		return map[string]any{"ok": true, "channel": channelJSON(ch)}
	case "conversations.archive":
		ch.Archived = true
		return map[string]any{"ok": true}
	case "conversations.history":
		msgs := s.messages[ch.ID]
		out := []any{}
		limit, _ := strconv.Atoi(p.Get("limit"))
		if limit <= 0 {
			limit = 100
		}
		for i := len(msgs) - 1; i >= 0 && len(out) < limit; i-- { // newest first, as Slack answers
			m := msgs[i]
			if latest := p.Get("latest"); latest != "" && m.TS != latest {
				continue
			}
			out = append(out, map[string]any{"type": "message", "user": m.User, "text": m.Text, "ts": m.TS})
		}
		return map[string]any{"ok": true, "messages": out}
	case "chat.postMessage":
		m := &Message{Channel: ch.ID, TS: s.ts(), Text: p.Get("text"), User: BotUser, ThreadTS: p.Get("thread_ts"), Blocks: json.RawMessage(p.Get("blocks"))}
		s.messages[ch.ID] = append(s.messages[ch.ID], m)
		return map[string]any{"ok": true, "channel": ch.ID, "ts": m.TS}
	case "chat.postEphemeral":
		s.ephemeral = append(s.ephemeral, Message{Channel: ch.ID, TS: s.ts(), Text: p.Get("text"), User: p.Get("user"), Blocks: json.RawMessage(p.Get("blocks"))})
		return map[string]any{"ok": true, "message_ts": s.ephemeral[len(s.ephemeral)-1].TS}
	case "chat.update":
		for _, m := range s.messages[ch.ID] {
			if m.TS == p.Get("ts") {
				m.Text, m.Blocks = p.Get("text"), json.RawMessage(p.Get("blocks"))
				m.Updates++
				return map[string]any{"ok": true, "channel": ch.ID, "ts": m.TS, "text": m.Text}
			}
		}
		return fail("message_not_found")
	case "chat.getPermalink":
		return map[string]any{"ok": true, "channel": ch.ID, "permalink": fmt.Sprintf("%s/archives/%s/p%s", s.srv.URL, ch.ID, strings.ReplaceAll(p.Get("message_ts"), ".", ""))}
	case "pins.add":
		ch.Pins = append(ch.Pins, p.Get("timestamp"))
		return map[string]any{"ok": true}
	}
	return fail("unknown_method")
}
