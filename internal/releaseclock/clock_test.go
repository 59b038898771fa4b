package releaseclock

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// TestClockFiresInOrderAndOnTime schedules jobs out of order on each clock
// kind, cancels one, and checks that the others fire once, in order, never
// early, and within a tolerance a loaded machine keeps.
func TestClockFiresInOrderAndOnTime(t *testing.T) {
	for _, kind := range []Kind{TimerFD, RuntimeTimer} {
		t.Run(map[Kind]string{TimerFD: "timerfd", RuntimeTimer: "runtime"}[kind], func(t *testing.T) {
			old := Use
			Use = kind
			defer func() { Use = old }()
			c, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			var (
				mu    sync.Mutex
				fired []time.Duration
				late  []time.Duration
			)
			base := time.Now().Add(50 * time.Millisecond)
			offsets := []time.Duration{40, 10, 30, 0, 20, 20}
			var cancelMe *Job
			for i, o := range offsets {
				at := base.Add(o * time.Millisecond)
				j := c.Schedule(at, func(now time.Time) func() {
					mu.Lock()
					fired = append(fired, o)
					late = append(late, now.Sub(at))
					mu.Unlock()
					return nil
				})
				if i == 2 {
					cancelMe = j
				}
			}
			c.Cancel(cancelMe)
			time.Sleep(time.Until(base) + 200*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			want := []time.Duration{0, 10, 20, 20, 40}
			if len(fired) != len(want) || !sort.SliceIsSorted(fired, func(i, j int) bool { return fired[i] < fired[j] }) {
				t.Fatalf("fired offsets %v, want %v (30 cancelled)", fired, want)
			}
			for i, l := range late {
				if l < 0 || l > 50*time.Millisecond {
					t.Errorf("job %d fired %v after its instant, want within [0, 50ms]", i, l)
				}
			}
		})
	}
}

// TestClockStopsRightAfterStart starts and stops clocks back to back, the
// way a Listen that fails does; a lost wake-up would hang here.
func TestClockStopsRightAfterStart(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			c, err := New()
			if err != nil {
				t.Error(err)
				return
			}
			c.Stop()
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("a clock did not stop: its thread missed the wake-up")
	}
}
