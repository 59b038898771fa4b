package releaseclock

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// TestClockSurvivesATimerFailure makes the clock thread's timerfd read fail:
// the fault must be reported, and jobs scheduled before and after it must
// still fire, on the runtime timer.
func TestClockSurvivesATimerFailure(t *testing.T) {
	oldRead, oldFault := readTimer, OnFault
	defer func() { readTimer, OnFault = oldRead, oldFault }()
	var failed sync.Once
	readTimer = func(fd int, p []byte) (int, error) {
		err := unix.EIO
		failed.Do(func() { err = unix.EBADF })
		if err == unix.EBADF {
			return 0, err
		}
		return oldRead(fd, p)
	}
	faults := make(chan error, 4)
	OnFault = func(err error) { faults <- err }
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	f := &firings{done: make(chan struct{}), want: 2}
	at := time.Now().Add(20 * time.Millisecond)
	c.Schedule(at, f.job("before", at))
	var ferr error
	select {
	case ferr = <-faults:
	case <-time.After(5 * time.Second):
		t.Fatal("the timerfd failure was not reported")
	}
	if !errors.Is(ferr, unix.EBADF) || !strings.Contains(ferr.Error(), "runtime timer") {
		t.Errorf("fault %q: want EBADF, saying what the clock does now", ferr)
	}
	at2 := time.Now().Add(20 * time.Millisecond)
	c.Schedule(at2, f.job("after", at2))
	if names, _ := f.wait(t); !slices.Equal(names, []string{"before", "after"}) {
		t.Errorf("fired %v, want [before after]", names)
	}
}

// TestSchedulingSaysWhatTheThreadGot checks both outcomes of the SCHED_FIFO
// request, the refusal injected.
func TestSchedulingSaysWhatTheThreadGot(t *testing.T) {
	old := schedSetAttr
	defer func() { schedSetAttr = old }()
	schedSetAttr = func(int, *unix.SchedAttr, uint) error { return unix.EPERM }
	setScheduling("", nil) // as if no clock had started yet
	p, err := Scheduling()
	if p != "SCHED_OTHER" || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "CAP_SYS_NICE") {
		t.Errorf("refused: Scheduling() = %q, %v; want SCHED_OTHER and EPERM naming CAP_SYS_NICE", p, err)
	}
	schedSetAttr = old
	p, err = Scheduling()
	switch {
	case errors.Is(err, unix.EPERM):
		t.Logf("SCHED_FIFO not permitted here: %v", err)
	case err != nil || p != "SCHED_FIFO 10":
		t.Errorf("Scheduling() = %q, %v; want SCHED_FIFO 10", p, err)
	}
}
