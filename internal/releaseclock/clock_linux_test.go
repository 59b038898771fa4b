package releaseclock

import (
	"errors"
	"fmt"
	"os"
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
		got, err := s.Wait(at, DefaultConfig().Spin)
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
	oldRead := readTimer
	defer func() { readTimer = oldRead }()
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
	cfg := DefaultConfig()
	cfg.OnFault = func(err error) { faults <- err }
	c, err := New(cfg)
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
	if names, _ := f.wait(t, c); !slices.Equal(names, []string{"before", "after"}) {
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

// TestClockThreadIsNamedAndCounted checks what an observer of the clock
// thread relies on: its name in /proc/self/task/TID/comm, and the
// statistics of what it fired and the CPU time it took.
func TestClockThreadIsNamedAndCounted(t *testing.T) {
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	f := &firings{done: make(chan struct{}), want: 3}
	for i := range 3 {
		at := time.Now().Add(time.Duration(10+i) * time.Millisecond)
		c.Schedule(at, f.job(string(rune('a'+i)), at))
	}
	f.wait(t, c) // and its own job: 4 fired
	st := c.Stats()
	// The counts are added once the batch ends, after the last fire.
	for deadline := time.Now().Add(5 * time.Second); st.Fired < 4 && time.Now().Before(deadline); st = c.Stats() {
		time.Sleep(time.Millisecond)
	}
	if st.Fired != 4 || st.Batches == 0 || st.Batches > 4 {
		t.Errorf("Stats() = %+v, want 4 fired (3 and wait's) in 1-4 batches", st)
	}
	if st.CPU <= 0 || st.CPU > 3*time.Second {
		t.Errorf("Stats().CPU = %v, want the thread's own CPU time, > 0", st.CPU)
	}
	if st.Busy < st.CPU-time.Millisecond || st.Busy > 3*time.Second {
		t.Errorf("Stats().Busy = %v, want the batches' wall time, at least their CPU %v", st.Busy, st.CPU)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", st.TID))
	if err != nil {
		t.Fatalf("the clock thread %d: %v", st.TID, err)
	}
	if got := strings.TrimSpace(string(comm)); got != ThreadName {
		t.Errorf("thread %d is named %q, want %q", st.TID, got, ThreadName)
	}
}
