package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unicode/utf8"

	"github.com/sitrep-oncall/sitrep/internal/console"
)

// directOutput opens an output that must be written in place rather than
// replaced: "-" (standard output), or an existing path that is not a regular
// file — a device such as /dev/null or /dev/stdout, a FIFO. Renaming a
// temporary file over those would put a regular file where the device was
// (as root, for everyone). ok is false for a regular or missing path, which
// the caller replaces atomically (temporary file, fsync, rename).
func directOutput(path string, stdout io.Writer) (w io.Writer, closeFn func() error, ok bool, err error) {
	if path == "-" {
		return stdout, func() error { return nil }, true, nil
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().IsRegular() {
		return nil, nil, false, nil
	}
	if st.IsDir() {
		return nil, nil, false, &os.PathError{Op: "write", Path: path, Err: os.ErrInvalid}
	}
	flags := os.O_WRONLY
	if st.Mode()&os.ModeNamedPipe != 0 {
		flags |= syscall.O_NONBLOCK // a FIFO nobody reads: an error now, not a hang that ignores Ctrl-C
	}
	f, err := os.OpenFile(path, flags, 0)
	if errors.Is(err, syscall.ENXIO) {
		return nil, nil, false, fmt.Errorf("%s is a FIFO and nothing is reading it: start the reader first", path)
	}
	if err != nil {
		return nil, nil, false, err
	}
	return f, f.Close, true, nil
}

// visibleWriter shows control characters from outside text as caret
// notation (console.Visible) in what it passes on: a postmortem in Markdown
// printed or later cat'ed to a terminal cannot drive it. A rune split
// across two writes is held until it is whole.
type visibleWriter struct {
	w    io.Writer
	tail []byte
}

func (v *visibleWriter) Write(p []byte) (int, error) {
	buf := append(v.tail, p...)
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	v.tail = append([]byte(nil), buf[cut:]...)
	if _, err := io.WriteString(v.w, console.Visible(string(buf[:cut]))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held (an incomplete rune at the very end).
func (v *visibleWriter) Flush() error {
	if len(v.tail) == 0 {
		return nil
	}
	_, err := io.WriteString(v.w, console.Visible(string(v.tail)))
	v.tail = nil
	return err
}
