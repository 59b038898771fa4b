package releaseclock

import (
	"testing"
	"time"
)

// TestSleeperWaitsUntilTheInstant checks that Wait never returns before its
// instant, and returns within a tolerance a loaded machine keeps.
func TestSleeperWaitsUntilTheInstant(t *testing.T) {
	s, err := NewSleeper()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []time.Duration{-time.Millisecond, 0, 2 * time.Millisecond, 5 * time.Millisecond} {
		at := time.Now().Add(d)
		got, err := s.Wait(at)
		if err != nil {
			t.Fatal(err)
		}
		if got.Before(at) || got.Sub(at) > 50*time.Millisecond && d > 0 {
			t.Errorf("Wait(now%+v) returned %v after the instant, want within [0, 50ms]", d, got.Sub(at))
		}
	}
}
