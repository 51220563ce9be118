package slacktest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The Web API methods, answered as Slack does — including its refusals: a
// private channel is invisible to whoever is not in it, an archived one
// takes no posts, invites or bookmarks, and Sitrep's bot must be in a
// channel to post there.

func fail(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func channelJSON(ch *Channel) map[string]any {
	return map[string]any{"id": ch.ID, "name": ch.Name, "is_channel": !ch.Private, "is_group": ch.Private, "is_private": ch.Private,
		"is_member": slices.Contains(ch.Members, BotUser), "creator": ch.Creator, "created": ch.Created, "is_archived": ch.Archived,
		"topic": map[string]any{"value": ch.Topic}}
}

// method answers one Web API method (s.mu held).
func (s *Server) method(method string, p url.Values) map[string]any {
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
			if f == nil || s.visible(p.Get("channel_id")) == nil {
				return fail("invalid_arguments")
			}
			f.Title, f.Channel = r.Title, p.Get("channel_id")
			out = append(out, map[string]any{"id": f.ID, "title": f.Title})
		}
		return map[string]any{"ok": true, "files": out}
	case "conversations.list":
		types := strings.Split(p.Get("types"), ",")
		if p.Get("types") == "" {
			types = []string{"public_channel"}
		}
		var out []any
		for _, ch := range s.channels {
			kind := "public_channel"
			if ch.Private {
				kind = "private_channel"
			}
			if slices.Contains(types, kind) && s.visible(ch.ID) != nil && (!ch.Archived || p.Get("exclude_archived") != "true") {
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
		ch.Creator, ch.Private = BotUser, p.Get("is_private") == "true"
		return map[string]any{"ok": true, "channel": channelJSON(ch)}
	case "bookmarks.add", "bookmarks.list":
		return s.bookmarks(method, p)
	}
	ch := s.visible(p.Get("channel"))
	if ch == nil {
		return fail("channel_not_found")
	}
	member := slices.Contains(ch.Members, BotUser)
	switch method {
	case "conversations.invite":
		switch {
		case ch.Archived:
			return fail("is_archived")
		case !member:
			return fail("not_in_channel")
		}
		added := 0
		for _, u := range strings.Split(p.Get("users"), ",") {
			if u != "" && !slices.Contains(ch.Members, u) {
				ch.Members = append(ch.Members, u)
				added++
			}
		}
		if added == 0 {
			return fail("already_in_channel")
		}
		return map[string]any{"ok": true, "channel": channelJSON(ch)}
	case "conversations.setTopic":
		if ch.Archived {
			return fail("is_archived")
		}
		ch.Topic = p.Get("topic")
		return map[string]any{"ok": true, "channel": channelJSON(ch)}
	case "conversations.archive":
		if ch.Archived {
			return fail("already_archived")
		}
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
		switch {
		case ch.Archived:
			return fail("is_archived")
		case !member:
			return fail("not_in_channel")
		}
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
		if slices.Contains(ch.Pins, p.Get("timestamp")) {
			return fail("already_pinned")
		}
		ch.Pins = append(ch.Pins, p.Get("timestamp"))
		return map[string]any{"ok": true}
	}
	return fail("unknown_method")
}

// visible is the channel with that id as Sitrep's bot sees it: a private
// channel only when the bot is in it.
func (s *Server) visible(id string) *Channel {
	ch := s.channels[id]
	if ch == nil || ch.Private && !slices.Contains(ch.Members, BotUser) {
		return nil
	}
	return ch
}

// bookmarks answers bookmarks.add and bookmarks.list (channel_id, not channel).
func (s *Server) bookmarks(method string, p url.Values) map[string]any {
	ch := s.visible(p.Get("channel_id"))
	if ch == nil {
		return fail("channel_not_found")
	}
	if method == "bookmarks.list" {
		out := []any{}
		for _, b := range ch.Bookmarks {
			out = append(out, map[string]any{"id": b.ID, "channel_id": ch.ID, "title": b.Title, "link": b.Link, "type": "link"})
		}
		return map[string]any{"ok": true, "bookmarks": out}
	}
	link, err := url.Parse(p.Get("link"))
	switch {
	case ch.Archived:
		return fail("is_archived")
	case p.Get("title") == "" || p.Get("type") == "":
		return fail("invalid_arguments")
	case p.Get("type") != "link":
		return fail("invalid_bookmark_type")
	case err != nil || (link.Scheme != "https" && link.Scheme != "http") || link.Host == "":
		return fail("invalid_link")
	case len(ch.Bookmarks) >= 100:
		return fail("too_many_bookmarks")
	}
	s.seq++
	b := Bookmark{ID: fmt.Sprintf("Bk%05d", s.seq), Title: p.Get("title"), Link: p.Get("link")}
	ch.Bookmarks = append(ch.Bookmarks, b)
	return map[string]any{"ok": true, "bookmark": map[string]any{"id": b.ID, "channel_id": ch.ID, "title": b.Title, "link": b.Link, "type": "link"}}
}
