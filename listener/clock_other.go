//go:build !linux

package listener

func newClock() (scheduler, error) { return newGoClock(), nil }
