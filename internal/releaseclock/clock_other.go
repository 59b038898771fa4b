//go:build !linux

package releaseclock

import "errors"

// New starts a clock apart from the process-wide one: here always the
// runtime timer.
func New() (Clock, error) { return newGoClock(), nil }

// Scheduling says how the clock thread is scheduled: here an ordinary
// goroutine.
func Scheduling() (string, error) {
	return "goroutine", errors.ErrUnsupported
}
