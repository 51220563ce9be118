package incidents

import (
	"slices"
	"strings"
	"time"
)

// OpenWarRoom binds the incident to its chat channel and header message.
// An incident has at most one war room.
func (inc *Incident) OpenWarRoom(channel, name, headerRef string, by Actor, at time.Time) ([]Event, error) {
	if channel == "" {
		return nil, Errorf(EInvalid, "a war room needs a channel")
	}
	if inc.Channel != "" {
		return nil, Errorf(EConflict, "%s already has its war room (%s)", inc.Key(), orName(inc.ChannelName, inc.Channel))
	}
	inc.Channel, inc.ChannelName, inc.HeaderRef = channel, name, headerRef
	ev := inc.event(EventWarRoomOpened, by, at)
	ev.To = channel
	ev.Message = "war room #" + orName(name, channel)
	inc.touch(at)
	return []Event{ev}, nil
}

func orName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// Pin is a chat message someone marked for the timeline.
type Pin struct {
	Ref       string // the adapter's id of the message (channel/ts)
	Author    string
	Text      string
	Permalink string
	At        time.Time // when the message was posted
}

// MaxPins bounds how many messages one incident records.
const MaxPins = 1000

// PinMessage adds a marked chat message to the timeline, once: marking the
// same message again (a pin after a 📌 reaction) records nothing.
func (inc *Incident) PinMessage(p Pin, by Actor, at time.Time) ([]Event, error) {
	if p.Ref == "" {
		return nil, Errorf(EInvalid, "a pinned message needs a reference")
	}
	if slices.Contains(inc.Pins, p.Ref) {
		return nil, nil
	}
	if len(inc.Pins) >= MaxPins {
		return nil, Errorf(EConflict, "%s already has %d pinned messages on its timeline", inc.Key(), MaxPins)
	}
	text := strings.TrimSpace(p.Text)
	text = Cut(text, MaxStored)
	inc.Pins = append(inc.Pins, p.Ref)
	ev := inc.event(EventMessagePinned, by, at)
	ev.Message = text
	ev.Fields = map[string]string{"author": p.Author, "permalink": p.Permalink, "ref": p.Ref}
	if !p.At.IsZero() {
		ev.Fields["posted_at"] = p.At.UTC().Format(time.RFC3339)
	}
	inc.touch(at)
	return []Event{ev}, nil
}
