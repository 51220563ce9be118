package incidents

import (
	"errors"
	"fmt"
)

// Error codes: the kinds of failure a person may be told about.
const (
	EInvalid  = "invalid"  // bad input: unknown severity, empty note, bad id
	ENotFound = "notfound" // no such incident
	EConflict = "conflict" // a transition that does not apply: resolving a resolved incident
	EInternal = "internal" // anything else; never shown to a user in detail
)

// Error is the one error type whose message is meant for the person who asked.
// Anything else is an internal error and is shown only as a reference.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) and friends match on the code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalid  = &Error{Code: EInvalid}
	ErrNotFound = &Error{Code: ENotFound}
	ErrConflict = &Error{Code: EConflict}
)

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err's *Error, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the text a user may read for err, or "" when err is
// internal (the caller then shows a reference and logs the chain).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}
