package slacktest

import (
	"math"
	"time"
)

// Slack's rate limits, as this server enforces them: a token bucket per
// method (and per channel for chat.postMessage) answering 429 with the
// Retry-After until the next token; and whole outages of the Web API.

// Tiers are Slack's published rate limits per method and workspace, in calls
// a minute (Tier 2 20, Tier 3 50, Tier 4 100); chat.postMessage is limited
// per channel instead (about one a second). A method not listed is
// unlimited here (apps.connections.open is Tier 1 in Slack; tests reconnect
// more often than that).
var Tiers = map[string]float64{
	"conversations.create": 20, "conversations.setTopic": 20, "conversations.archive": 20, "conversations.list": 20,
	"pins.add": 20, "bookmarks.add": 20, "usergroups.users.list": 20,
	"conversations.invite": 50, "chat.update": 50, "conversations.history": 50, "conversations.info": 50, "bookmarks.list": 50,
	"chat.getPermalink": 100, "chat.postEphemeral": 100, "views.open": 100, "auth.test": 100,
	"files.getUploadURLExternal": 100, "files.completeUploadExternal": 100,
}

// PostPerChannel is chat.postMessage's limit in one channel, a minute.
const PostPerChannel = 60

func newLimit(perMin, scale float64) *limit {
	burst := max(1, float64(int(perMin/10)))
	return &limit{rate: perMin * scale / 60, burst: burst, tokens: burst, last: time.Now()}
}

// Unlimited removes every rate limit (tests of other things).
func (s *Server) Unlimited() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = map[string]*limit{}
	s.scale = 0
}

// Outage makes every Web API method but apps.connections.open answer 503
// until the given time (the socket stays up).
func (s *Server) Outage(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = until
}

// limit is a method's rate limit, as Slack's tiers enforce them.
type limit struct {
	rate, burst, tokens float64
	last                time.Time
}

// Limit sets a method's rate: calls beyond perSecond (with a burst) get 429
// and Retry-After, like Slack's tiers.
func (s *Server) Limit(method string, perSecond, burst float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &limit{rate: perSecond, burst: burst, tokens: burst, last: time.Now()}
}

// allow takes a token, or says how long until one (Retry-After, whole
// seconds as Slack sends it).
func (l *limit) allow(now time.Time) (bool, int) {
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false, int(math.Ceil((1 - l.tokens) / l.rate))
	}
	l.tokens--
	return true, 0
}
