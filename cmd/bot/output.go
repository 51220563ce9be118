package main

import (
	"io"
	"os"
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
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, nil, false, err
	}
	return f, f.Close, true, nil
}
