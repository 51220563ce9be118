// Package commands turns a neutral Request (who, where, what) into a change
// through incidents.Service and a neutral Reply (text, fields, buttons) that
// each chat adapter renders its own way. Every command is a value in one
// Registry; help is built from it.
package commands

import (
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
)

// Request is one thing a person (or a button press) asked for.
type Request struct {
	// ID is the platform's id of this request, when it has one: a request
	// replayed after a crash (Slack's envelope id) declares at most once.
	ID      string
	Actor   incidents.Actor
	Channel string // the war room the request came from, "" elsewhere
	Text    string // "declare P2 Checkout down", with or without a leading "/incident"
}

// Reply is what to show in answer: adapters render it (Block Kit, terminal).
type Reply struct {
	Text     string // the headline: one line, or a few
	Fields   []Field
	Lines    []string // a list or table body, one entry per line
	Buttons  []Button
	Error    bool   // Text is an error message
	Usage    string // with Error: how to call the command
	Private  bool   // only the asker needs it (ephemeral in Slack)
	Incident *incidents.Incident
	// People are the names the reply mentions on purpose (the asker, the
	// leads of a list, a timeline's actors) besides Incident's own people;
	// a chat adapter may notify them. Anything else in the text that looks
	// like a mention came from outside and is shown as text.
	People []string
	File   *File // a document to hand over (Slack uploads it; the terminal prints it)
	// Thread groups replies that belong together (one runbook's steps); chat
	// adapters that have threads post them in one.
	Thread string
	// Release is the release a reply is about: a chat adapter that keeps
	// a thread per release posts it there.
	Release *releases.Release
}

// File is a document a reply carries.
type File struct {
	Name    string // e.g. "INC-7-postmortem.md"
	Title   string
	Content []byte
}

// Field is a labelled value ("Severity": "P2 High").
type Field struct {
	Label, Value string
}

// Button is a choice offered with a reply. Pressing it runs Command, after
// asking for Input (appended to Command) and Confirm, when they are set.
type Button struct {
	Label   string
	Command string // e.g. "ack INC-1"
	Input   string // what to ask for first, e.g. "<P1-P4> [reason]"
	Style   Style
	Confirm string // a question to confirm before running
	// Options, when set, are the values the Input may take; an adapter may
	// show them as a menu. Each Value is appended to Command as the input.
	Options []Option
	// User says the Input is one user (an adapter may show a user picker).
	User bool
	// Form says the Input is a status update: an adapter asks for it in a
	// form (Slack: a modal with the status and the message).
	Form bool
}

// Option is one choice of a Button's input.
type Option struct {
	Label, Value string
}

// Style hints how a button should look.
type Style string

// Button styles.
const (
	Default Style = ""
	Primary Style = "primary"
	Danger  Style = "danger"
)
