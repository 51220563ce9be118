// Package cputime is the process's CPU time, for benchmarks whose many
// goroutines make the wall clock a poor measure of the work done: they
// report it per op beside ns/op. Only tests import it.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Now is the process's user and system time so far.
func Now() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report reports the process's CPU time since start (a Now) per op, as
// cpu-ns/op.
func Report(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((Now()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
