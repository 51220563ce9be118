package slacktest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The HTTP endpoints beside the Web API: file uploads and response URLs.

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	file, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	content, _ := io.ReadAll(io.LimitReader(file, 64<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil {
		http.Error(w, "no such upload", 404)
		return
	}
	f.Content = content
	s.signal()
	io.WriteString(w, "OK - "+strconv.Itoa(len(content)))
}

func (s *Server) respond(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	s.mu.Lock()
	s.responses = append(s.responses, Response{Path: strings.TrimPrefix(r.URL.Path, "/respond/"), Body: body})
	s.signal()
	s.mu.Unlock()
	io.WriteString(w, "ok")
}
