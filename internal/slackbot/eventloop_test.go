package slackbot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// hangingMetrics is a Prometheus that never answers.
type hangingMetrics struct{}

func (hangingMetrics) Instant(ctx context.Context, _ string, _ time.Time) ([]runbooks.Sample, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (hangingMetrics) Graph(ctx context.Context, _ runbooks.GraphSpec) ([]byte, string, error) {
	<-ctx.Done()
	return nil, "", errors.New("hung")
}

// TestSlowStepBlocksNothing: a step stuck on a hanging Prometheus neither
// delays acknowledgements nor other war rooms; it fails at its timeout and
// says so on the timeline.
func TestSlowStepBlocksNothing(t *testing.T) {
	e := start(t)
	runner := runbooks.NewRunner(nil, hangingMetrics{}, runbooks.Guardrails{})
	runner.SetTimeout(3 * time.Second)
	e.router.UseRunner(runner)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 Checkout error rate above 5%"))
	e.send(t, e.slash(t, "U1", e.general, "declare P3 search slow"))
	roomA, roomB := e.warRoom(t, 1), e.warRoom(t, 2)

	e.send(t, e.click(t, "U2", roomA.ID, button("cmd0", "step INC-1 high-error-rate 2"))) // hangs on Prometheus
	_, ack := e.send(t, e.slash(t, "U2", roomA.ID, "note behind the slow step"))          // acknowledged at once all the same
	e.send(t, e.slash(t, "U3", roomB.ID, "note other rooms carry on"))
	e.wait(t, "room B's note", func(*slacktest.View) bool { return len(e.kinds(t, 2, incidents.EventNote)) == 1 })
	if steps := e.kinds(t, 1, incidents.EventRunbookStep); len(steps) != 0 {
		t.Fatalf("the slow step finished before room B's note: %+v", steps)
	}
	if ack.EnvelopeID == "" {
		t.Fatal("no ack for the envelope behind the slow step")
	}
	e.wait(t, "the slow step's failure", func(*slacktest.View) bool { return len(e.kinds(t, 1, incidents.EventRunbookStep)) == 1 })
	step := e.kinds(t, 1, incidents.EventRunbookStep)[0]
	if step.Fields["outcome"] != "failed" || !strings.Contains(step.Message, "deadline exceeded") {
		t.Errorf("the slow step: %+v", step)
	}
	e.wait(t, "room A's note, in order after the step", func(*slacktest.View) bool { return len(e.kinds(t, 1, incidents.EventNote)) == 1 })
	e.wait(t, "the step's failure in the war room", func(v *slacktest.View) bool {
		for _, m := range v.Messages(roomA.ID) {
			if strings.Contains(m.Text, "step 2/") && strings.Contains(string(m.Blocks), "failed") {
				return true
			}
		}
		return false
	})
}

// TestOperatorsByUserGroup: SITREP_OPERATORS may name a Slack user group;
// its members pass the operator check, others do not.
func TestOperatorsByUserGroup(t *testing.T) {
	e := start(t)
	e.srv.UserGroup("SONCALL", "U7", "U8")
	runner := runbooks.NewRunner(nil, nil, runbooks.Guardrails{Operators: []string{"SONCALL"}, Namespaces: []string{"architect-production"}})
	runner.ResolveGroupsWith(e.bot.GroupMembers)
	e.router.UseRunner(runner)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 Checkout error rate above 5%"))
	room := e.warRoom(t, 1)
	e.send(t, e.slash(t, "U9", room.ID, "step high-error-rate 13")) // restart, by someone outside the group
	e.send(t, e.slash(t, "U7", room.ID, "step high-error-rate 13")) // by a member
	e.wait(t, "both steps", func(*slacktest.View) bool { return len(e.kinds(t, 1, incidents.EventRunbookStep)) == 2 })
	steps := e.kinds(t, 1, incidents.EventRunbookStep)
	if !strings.Contains(steps[0].Message, "only operators") {
		t.Errorf("outsider: %s", steps[0].Message)
	}
	if strings.Contains(steps[1].Message, "only operators") || !strings.Contains(steps[1].Message, "no Kubernetes cluster is configured") {
		t.Errorf("member: %s", steps[1].Message) // past the operator and namespace checks, stopped only for want of a cluster
	}
	e.srv.Look(func(v *slacktest.View) {
		if n := len(v.Calls("usergroups.users.list")); n != 1 {
			t.Errorf("the group was looked up %d times, want once (cached)", n)
		}
	})
}
