package incidents

import (
	"testing"
	"time"
)

func TestWarRoomAndPins(t *testing.T) {
	inc := declared(t, P1)
	at := t0.Add(time.Minute)
	events, err := inc.OpenWarRoom("C1", "inc-1-api-down", "C1/1.0", System, at)
	if err != nil || len(events) != 1 || events[0].Kind != EventWarRoomOpened || inc.Channel != "C1" || inc.HeaderRef != "C1/1.0" {
		t.Fatalf("open war room: %v %+v", err, events)
	}
	if _, err := inc.OpenWarRoom("C2", "other", "", System, at); ErrorCode(err) != EConflict || inc.Channel != "C1" {
		t.Errorf("a second war room: %v, channel %s", err, inc.Channel)
	}
	if _, err := declared(t, P2).OpenWarRoom("", "", "", System, at); ErrorCode(err) != EInvalid {
		t.Errorf("empty channel: %v", err)
	}
	pin := Pin{Ref: "C1/1700000000.000100", Author: "<@U1>", Text: " rolled back ", Permalink: "https://x/p1", At: t0}
	events, err = inc.PinMessage(pin, bob, at)
	if err != nil || len(events) != 1 || events[0].Message != "rolled back" || events[0].Fields["permalink"] != "https://x/p1" ||
		events[0].Fields["author"] != "<@U1>" || events[0].Fields["posted_at"] != "2026-11-26T03:00:00Z" {
		t.Fatalf("pin: %v %+v", err, events)
	}
	if events, err := inc.PinMessage(pin, alice, at); err != nil || events != nil {
		t.Errorf("the same message pinned twice: %v %+v", err, events)
	}
	if _, err := inc.PinMessage(Pin{}, alice, at); ErrorCode(err) != EInvalid {
		t.Errorf("pin without ref: %v", err)
	}
}
