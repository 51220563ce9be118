package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Ack is what the app answered to an envelope.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage
	At         time.Time
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// link is the socket-mode WebSocket: hello, then envelopes out and acks in.
func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	wmu := &sync.Mutex{}
	s.mu.Lock()
	s.conns[conn] = wmu
	s.connects++
	s.signal()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.signal()
		s.mu.Unlock()
		conn.Close()
	}()
	wmu.Lock()
	err = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": "A0SITREP"}})
	wmu.Unlock()
	if err != nil {
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // Slack pings the app; the client counts a silent server as dead
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				wmu.Lock()
				conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				wmu.Unlock()
			}
		}
	}()
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := conn.ReadJSON(&ack); err != nil {
			return
		}
		s.mu.Lock()
		if _, dup := s.acks[ack.EnvelopeID]; !dup {
			s.acks[ack.EnvelopeID] = Ack{EnvelopeID: ack.EnvelopeID, Payload: ack.Payload, At: time.Now()}
		}
		s.signal()
		s.mu.Unlock()
	}
}

// Envelope is one socket-mode message to the app.
type Envelope struct {
	EnvelopeID             string `json:"envelope_id"`
	Type                   string `json:"type"`
	Payload                any    `json:"payload"`
	AcceptsResponsePayload bool   `json:"accepts_response_payload"`
	RetryAttempt           int    `json:"retry_attempt"`
	RetryReason            string `json:"retry_reason"`
}

// ErrNotConnected is returned by Send when no app is connected.
var ErrNotConnected = errors.New("slacktest: no socket-mode connection")

// Send writes an envelope to the connected app and returns when it is sent.
// Its id is set if empty.
func (s *Server) Send(env Envelope) (string, error) {
	s.mu.Lock()
	if env.EnvelopeID == "" {
		s.seq++
		env.EnvelopeID = fmt.Sprintf("env-%d", s.seq)
	}
	var conn *websocket.Conn
	var wmu *sync.Mutex
	for c, m := range s.conns {
		conn, wmu = c, m
		break
	}
	s.mu.Unlock()
	if conn == nil {
		return "", ErrNotConnected
	}
	wmu.Lock()
	defer wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second)) // an app that stops reading fails the send, never hangs it
	s.mu.Lock()
	if _, again := s.sent[env.EnvelopeID]; !again {
		s.sent[env.EnvelopeID] = time.Now()
	}
	s.mu.Unlock()
	return env.EnvelopeID, conn.WriteJSON(env)
}

// Disconnect drops every socket (the app should reconnect).
func (s *Server) Disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Wait blocks until cond (called with the server's state locked) holds or
// ctx ends. It wakes on every change, without polling.
func (s *Server) Wait(ctx context.Context, cond func(v *View) bool) error {
	for {
		s.mu.Lock()
		ok := cond(&View{s})
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Poke wakes every Wait, for state kept outside the server (the app's store).
func (s *Server) Poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signal()
}

// Look calls fn with the server's state locked.
func (s *Server) Look(fn func(v *View)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&View{s})
}

// View reads the workspace's state; use it only inside Wait or Look.
type View struct{ s *Server }

// Connected is the number of open sockets; Connects counts every connection made.
func (v *View) Connected() int { return len(v.s.conns) }

// Connects counts every socket connection made so far.
func (v *View) Connects() int { return v.s.connects }

// AckLatency is the time from sending an envelope to reading its ack.
func (v *View) AckLatency(id string) (time.Duration, bool) {
	a, ok := v.s.acks[id]
	if !ok {
		return 0, false
	}
	return a.At.Sub(v.s.sent[id]), true
}

// Ack returns the app's answer to an envelope.
func (v *View) Ack(id string) (Ack, bool) { a, ok := v.s.acks[id]; return a, ok }

// Calls returns the calls of a method ("" for all).
func (v *View) Calls(method string) []Call {
	var out []Call
	for _, c := range v.s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// CallsFrom returns the calls answered from the nth on, of every method: a
// reader that keeps its place copies nothing twice.
func (v *View) CallsFrom(n int) []Call {
	if n >= len(v.s.calls) {
		return nil
	}
	return slices.Clone(v.s.calls[n:])
}

// CallCount is how many calls the server has answered.
func (v *View) CallCount() int { return len(v.s.calls) }

// Channel finds a channel by name.
func (v *View) Channel(name string) *Channel {
	if id, ok := v.s.byName[name]; ok {
		return v.s.channels[id]
	}
	return nil
}

// ChannelByID finds a channel by id.
func (v *View) ChannelByID(id string) *Channel { return v.s.channels[id] }

// Channels returns every channel.
func (v *View) Channels() []*Channel {
	out := make([]*Channel, 0, len(v.s.channels))
	for _, c := range v.s.channels {
		out = append(out, c)
	}
	return out
}

// Messages returns a channel's messages in order.
func (v *View) Messages(channel string) []*Message { return v.s.messages[channel] }

// Ephemeral returns the ephemeral messages sent with chat.postEphemeral.
func (v *View) Ephemeral() []Message { return v.s.ephemeral }

// Responses returns the posts to response URLs.
func (v *View) Responses() []Response { return v.s.responses }

// Views returns the modals opened with views.open.
func (v *View) Views() []json.RawMessage { return v.s.views }

// Files returns the files shared in a channel.
func (v *View) Files(channel string) []*File {
	var out []*File
	for _, f := range v.s.files {
		if f.Channel == channel {
			out = append(out, f)
		}
	}
	return out
}

// Room is a channel as a test counts it: its name, how many of its messages
// start with a given text (headers), and its pins.
type Room struct {
	Name          string
	Headers, Pins int
}

// Rooms are the channels whose name starts with prefix, each with how many
// of its messages start with header.
func (v *View) Rooms(prefix, header string) []Room {
	var out []Room
	for _, ch := range v.Channels() {
		if !strings.HasPrefix(ch.Name, prefix) {
			continue
		}
		r := Room{Name: ch.Name, Pins: len(ch.Pins)}
		for _, m := range v.Messages(ch.ID) {
			if strings.HasPrefix(m.Text, header) {
				r.Headers++
			}
		}
		out = append(out, r)
	}
	return out
}
