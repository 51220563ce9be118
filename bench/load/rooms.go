package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// warRooms sends `/incident declare` envelopes at rising open-loop rates
// and times each from its envelope to its war room with the header
// pinned (the pins.add the in-repo Slack server answered), until it
// saturates (see saturate; a room not made 10 s later is late): where Sitrep itself stops
// keeping up, with Slack's tiers off on both sides (real Slack allows 20
// channels a minute). The baseline is slack-go's socket-mode client doing
// the same for each command: ack, store it through bbolt's DB.Batch,
// conversations.create, chat.postMessage, pins.add.
func warRooms(botPath, dir string, from, maxRate int, step time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	srv := slacktest.New()
	defer srv.Close()
	srv.Unlimited()
	general := srv.CreateChannel("general")
	bot := exec.Command(botPath)
	bot.Env = append(os.Environ(), "SITREP_DB="+filepath.Join(dir, "rooms.db"), "SITREP_LISTEN=127.0.0.1:0", "SITREP_LOG_LEVEL=error", "SITREP_CONSOLE=off",
		"SLACK_BOT_TOKEN="+slacktest.BotToken, "SLACK_APP_TOKEN="+slacktest.AppToken, "SLACK_API_URL="+srv.URL, "SITREP_SLACK_RATE_SCALE=1000000")
	bot.Stderr = os.Stderr
	if err := bot.Start(); err != nil {
		return err
	}
	defer func() { bot.Process.Kill(); bot.Wait() }()
	base := slacktest.New()
	defer base.Close()
	base.Unlimited()
	baseGeneral := base.CreateChannel("general")
	var headers sync.Map // the baseline's rooms: name → channel, header ts
	if err := bareRooms(ctx, base, filepath.Join(dir, "bare-rooms.db"), &headers); err != nil {
		return err
	}
	for _, s := range []*slacktest.Server{srv, base} {
		up, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Wait(up, func(v *slacktest.View) bool { return v.Connected() > 0 })
		cancel()
		if err != nil {
			return fmt.Errorf("no socket-mode connection: %w", err)
		}
	}
	fmt.Printf("\nSlack: /incident declare to its war room with the header pinned, open loop, tiers off\n%-8s %-9s %10s %9s %9s %6s\n", "rate/s", "target", "rooms/s", "p50 ms", "p99 ms", "late")
	sides := []struct {
		name    string
		srv     *slacktest.Server
		channel string
	}{{"sitrep", srv, general}, {"baseline", base, baseGeneral}}
	round := 0
	best, kept := saturate([]string{"sitrep", "baseline"}, from, maxRate, 2, func(i, rate int) result {
		round++
		r := declares(ctx, sides[i].srv, sides[i].channel, round, rate, step)
		quiet(sides[i].srv)
		fmt.Printf("%-8d %-9s %10.1f %9.2f %9.2f %6d\n", rate, sides[i].name, r.throughput, r.p50, r.p99, r.errors)
		return r
	})
	fmt.Printf("saturation: sitrep %s rooms/s, baseline %s rooms/s\n", saturation(best, kept, "sitrep"), saturation(best, kept, "baseline"))
	var perRoom []string
	srv.Look(func(v *slacktest.View) {
		n := map[string]int{}
		for _, c := range v.Calls("") {
			n[c.Method]++
		}
		rooms := max(1, n["pins.add"])
		for _, m := range []string{"conversations.create", "conversations.setTopic", "conversations.invite", "chat.postMessage", "chat.update", "pins.add", "bookmarks.add"} {
			if n[m] > 0 {
				perRoom = append(perRoom, fmt.Sprintf("%s %.1f", m, float64(n[m])/float64(rooms)))
			}
		}
	})
	fmt.Printf("Sitrep's Web API calls per room: %s (the baseline makes one create, one post, one pin)\n", strings.Join(perRoom, ", "))
	return headerEdits(ctx, sides[0].srv, sides[1].srv, from, 2*maxRate, step)
}

// quiet waits until srv has had no Web API call for half a second (at
// most 10 s): what a step left behind is not charged to the next.
func quiet(srv *slacktest.Server) {
	count := func() (n int) {
		srv.Look(func(v *slacktest.View) { n = v.CallCount() })
		return n
	}
	last := count()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
		n := count()
		if n == last {
			return
		}
		last = n
	}
}

// saturation is a side's best throughput as the summary prints it: "≥ n
// (never saturated)" when it kept up with every rate tried.
func saturation(best map[string]float64, kept map[string]bool, side string) string {
	out := fmt.Sprintf("%.0f", best[side])
	if kept[side] {
		out = "≥ " + out + " (never saturated)"
	}
	return out
}

// target is a war room a click edits: the key its command names (INC-n
// for Sitrep, the room's name for the baseline), its channel and header.
type target struct{ key, channel, header string }

// roomsOf are 20 of the rooms the declares made.
func roomsOf(srv *slacktest.Server) []target {
	var out []target
	srv.Look(func(v *slacktest.View) {
		for _, ch := range v.Channels() {
			name, ok := strings.CutPrefix(ch.Name, "inc-")
			key := ""
			switch {
			case ok && strings.Contains(name, "-load-r"):
				key = "INC-" + name[:strings.Index(name, "-")]
			case strings.HasPrefix(ch.Name, "load-r"):
				key = ch.Name
			}
			if key != "" && len(ch.Pins) == 1 && len(out) < 20 {
				out = append(out, target{key, ch.ID, ch.Pins[0]})
			}
		}
	})
	return out
}

var leadShown = regexp.MustCompile(`<@UL(\d+)>`)

// headerEdits sends button clicks at rising open-loop rates, each making
// a new person lead of one of 20 war rooms, and times each from its
// envelope to the first edit of that room's header showing it or a later
// click's lead (edits are coalesced: a later state shows the earlier one
// was taken), until p99 passes 1 s or a click shows in no edit within 10 s.
func headerEdits(ctx context.Context, srv, base *slacktest.Server, from, maxRate int, step time.Duration) error {
	sides := []struct {
		name  string
		srv   *slacktest.Server
		rooms []target
	}{{"sitrep", srv, roomsOf(srv)}, {"baseline", base, roomsOf(base)}}
	for _, s := range sides {
		if len(s.rooms) < 20 {
			return fmt.Errorf("%s: %d war rooms with a pinned header to click in, want 20", s.name, len(s.rooms))
		}
	}
	fmt.Printf("\nSlack: a click (lead @someone) to the war room's header edited, 20 rooms, open loop, tiers off\n%-8s %-9s %10s %9s %9s %6s\n", "rate/s", "target", "clicks/s", "p50 ms", "p99 ms", "late")
	var seq int
	best, kept := saturate([]string{"sitrep", "baseline"}, from, maxRate, 2, func(i, rate int) result {
		r := clicksToHeaders(ctx, sides[i].srv, sides[i].rooms, &seq, rate, step)
		quiet(sides[i].srv)
		fmt.Printf("%-8d %-9s %10.1f %9.2f %9.2f %6d\n", rate, sides[i].name, r.throughput, r.p50, r.p99, r.errors)
		return r
	})
	fmt.Printf("saturation: sitrep %s clicks/s, baseline %s clicks/s\n", saturation(best, kept, "sitrep"), saturation(best, kept, "baseline"))
	return nil
}

// clicksToHeaders sends rate clicks a second for d, click i making UL<i>
// lead of room i%20, then waits up to 10 s for the edits showing them.
func clicksToHeaders(ctx context.Context, srv *slacktest.Server, rooms []target, seq *int, rate int, d time.Duration) result {
	n := int(float64(rate) * d.Seconds())
	first := *seq
	*seq += n
	sent := make([]time.Time, n)
	interval := time.Second / time.Duration(rate)
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		time.Sleep(time.Until(begin.Add(time.Duration(i) * interval)))
		sent[i] = time.Now()
		room := rooms[i%len(rooms)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Send(slacktest.Envelope{Type: "interactive", Payload: map[string]any{
				"type": "block_actions", "user": map[string]any{"id": "U1"}, "channel": map[string]any{"id": room.channel},
				"container":    map[string]any{"type": "message", "channel_id": room.channel, "message_ts": room.header},
				"response_url": srv.ResponseURL(fmt.Sprint("click-", first+i)), "trigger_id": fmt.Sprint("c", first+i),
				"actions": []any{map[string]any{"type": "button", "action_id": "cmd0", "block_id": "actions-0", "action_ts": "1764126000.000001",
					"value": fmt.Sprintf("lead %s <@UL%d>", room.key, first+i), "text": map[string]any{"type": "plain_text", "text": "x"}}}}})
		}()
	}
	wg.Wait()
	byHeader := map[string]int{}
	for i, r := range rooms {
		byHeader[r.channel+"/"+r.header] = i
	}
	next := make([]int, len(rooms)) // each room's first click not yet shown: i ≡ room (mod 20)
	for r := range next {
		next[r] = r
	}
	var took []time.Duration
	var last time.Time
	cursor := 0
	return settle(ctx, n, begin, func() ([]time.Duration, time.Time) {
		var calls []slacktest.Call
		srv.Look(func(v *slacktest.View) { calls = v.CallsFrom(cursor) })
		cursor += len(calls)
		for _, c := range calls { // in the order answered
			r, ok := byHeader[c.Params.Get("channel")+"/"+c.Params.Get("ts")]
			if c.Method != "chat.update" || !ok || c.Status != 200 {
				continue
			}
			shows := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(c.Params.Get("blocks") + c.Params.Get("text")) // JSON escapes < and >
			m := leadShown.FindStringSubmatch(shows)
			if m == nil {
				continue
			}
			lead, _ := strconv.Atoi(m[1])
			// This edit shows the room's clicks up to lead as taken: each
			// sent before it is answered by it.
			for i := next[r]; i < n && first+i <= lead && sent[i].Before(c.At); i += len(rooms) {
				took = append(took, c.At.Sub(sent[i]))
				if c.At.After(last) {
					last = c.At
				}
				next[r] = i + len(rooms)
			}
		}
		return took, last
	})
}

// declares sends rate declares a second for d to srv, then waits up to
// 10 s for their rooms; errors counts the rooms not made by then.
func declares(ctx context.Context, srv *slacktest.Server, channel string, round, rate int, d time.Duration) result {
	n := int(float64(rate) * d.Seconds())
	sent := make([]time.Time, n)
	interval := time.Second / time.Duration(rate)
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		at := begin.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		sent[i] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Send(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true, Payload: map[string]any{
				"command": "/incident", "text": fmt.Sprintf("declare P3 load r%d n%d", round, i), "user_id": "U1", "user_name": "load",
				"channel_id": channel, "team_id": "T1", "api_app_id": "A1", "trigger_id": fmt.Sprint("t", round, ".", i),
				"response_url": srv.ResponseURL(fmt.Sprint("load-", round, "-", i))}})
		}()
	}
	wg.Wait()
	prefix := fmt.Sprintf("load-r%d-n", round)
	seen := make([]bool, n)
	var took []time.Duration
	var last time.Time
	cursor := 0
	return settle(ctx, n, begin, func() ([]time.Duration, time.Time) {
		srv.Look(func(v *slacktest.View) {
			calls := v.CallsFrom(cursor)
			cursor += len(calls)
			for _, c := range calls {
				if c.Method != "pins.add" || c.Status != 200 {
					continue
				}
				ch := v.ChannelByID(c.Params.Get("channel"))
				if ch == nil || !slices.Contains(ch.Pins, c.Params.Get("timestamp")) {
					continue // refused (slacktest answers Slack's errors with 200 and ok false)
				}
				_, rest, ok := strings.Cut(ch.Name, prefix)
				if i, err := strconv.Atoi(rest); ok && err == nil && i < n && !seen[i] {
					seen[i] = true
					took = append(took, c.At.Sub(sent[i]))
					if c.At.After(last) {
						last = c.At
					}
				}
			}
		})
		return took, last
	})
}

// bareRooms is the baseline: slack-go's socket-mode client that, for each
// slash command, acks, stores the command through DB.Batch, and makes the
// room with its header pinned.
func bareRooms(ctx context.Context, srv *slacktest.Server, path string, headers *sync.Map) error {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	store := func(text string) error {
		return db.Batch(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("commands"))
			seq, _ := b.NextSequence()
			return b.Put([]byte(strconv.FormatUint(seq, 10)), []byte(text))
		})
	}
	context.AfterFunc(ctx, func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("commands")); return err }); err != nil {
		return err
	}
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(srv.URL))
	sm := socketmode.New(api)
	go sm.RunContext(ctx)
	go func() {
		clicks := map[string]chan func(){} // a room's clicks, in order
		for evt := range sm.Events {
			if click, ok := evt.Data.(slack.InteractionCallback); ok && evt.Request != nil && len(click.ActionCallback.BlockActions) > 0 {
				// A click: its room's worker stores it, acks and edits the
				// header, the room's clicks in the order they came.
				value := click.ActionCallback.BlockActions[0].Value // "lead <room> <@user>"
				f := strings.Fields(value + " - -")
				room := f[1]
				q, ok := clicks[room]
				if !ok {
					q = make(chan func(), 1024)
					clicks[room] = q
					go func() {
						for do := range q {
							do()
						}
					}()
				}
				req := *evt.Request
				q <- func() {
					err := store(value)
					sm.Ack(req)
					if h, ok := headers.Load(room); err == nil && ok {
						ref := h.([2]string)
						api.UpdateMessageContext(ctx, ref[0], ref[1], slack.MsgOptionText("🔴 "+room+" · Lead: "+f[2], false))
					}
				}
				continue
			}
			cmd, ok := evt.Data.(slack.SlashCommand)
			if evt.Request == nil || !ok {
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					sm.Ack(*evt.Request)
				}
				continue
			}
			go func() {
				err := store(cmd.Text)
				sm.Ack(*evt.Request)
				if err != nil {
					return
				}
				name := strings.ReplaceAll(strings.TrimPrefix(cmd.Text, "declare P3 "), " ", "-")
				ch, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name})
				if err != nil {
					return
				}
				_, ts, err := api.PostMessageContext(ctx, ch.ID, slack.MsgOptionText("🔴 "+name, false))
				if err != nil {
					return
				}
				if api.AddPinContext(ctx, ch.ID, slack.ItemRef{Channel: ch.ID, Timestamp: ts}) == nil {
					headers.Store(name, [2]string{ch.ID, ts})
				}
			}()
		}
	}()
	return nil
}

// settle looks for the n answers of a step every 50 ms, for at most 10 s:
// look returns how long each found took and when the last came.
func settle(ctx context.Context, n int, begin time.Time, look func() ([]time.Duration, time.Time)) result {
	deadline := time.Now().Add(10 * time.Second)
	took, last := look()
	for len(took) < n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		took, last = look()
	}
	r := summarize(took, int64(n-len(took)))
	if len(took) > 0 {
		r.throughput = float64(len(took)) / last.Sub(begin).Seconds()
	}
	return r
}
