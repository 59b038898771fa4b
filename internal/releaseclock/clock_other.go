//go:build !linux

package releaseclock

import "errors"

// New starts a clock apart from the process-wide one: here always the
// runtime timer, whatever cfg.Kind says.
func New(cfg Config) (Clock, error) { return newGoClock(cfg), nil }

// Scheduling says how the clock thread is scheduled: here an ordinary
// goroutine.
func Scheduling() (string, error) {
	return "goroutine", errors.ErrUnsupported
}
