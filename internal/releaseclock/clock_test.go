package releaseclock

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// firings records which jobs fired, and when.
type firings struct {
	mu    sync.Mutex
	names []string
	late  []time.Duration
	done  chan struct{}
	want  int
}

func (f *firings) job(name string, at time.Time) func(time.Time) {
	return func(now time.Time) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.names = append(f.names, name)
		f.late = append(f.late, now.Sub(at))
		if len(f.names) == f.want {
			close(f.done)
		}
	}
}

// wait waits until want jobs fired, then a little more to catch extra ones.
func (f *firings) wait(t *testing.T) ([]string, []time.Duration) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the jobs did not fire")
	}
	time.Sleep(30 * time.Millisecond) // a job that should not fire would fire by now
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.names), slices.Clone(f.late)
}

// TestClockFiresInOrderAndOnTime schedules jobs out of order on each clock
// kind, cancels one, and checks that exactly the others fire, once each, in
// order, never early, and within a tolerance a loaded machine keeps.
func TestClockFiresInOrderAndOnTime(t *testing.T) {
	forEachKind(t, func(t *testing.T, c Clock) {
		f := &firings{done: make(chan struct{}), want: 5}
		base := time.Now().Add(50 * time.Millisecond)
		jobs := []struct {
			name string
			at   time.Duration
		}{{"e", 40}, {"b", 10}, {"cancelled", 30}, {"a", 0}, {"c", 20}, {"d", 21}}
		var cancelMe *Job
		for _, j := range jobs {
			at := base.Add(j.at * time.Millisecond)
			job := c.Schedule(at, f.job(j.name, at))
			if j.name == "cancelled" {
				cancelMe = job
			}
		}
		c.Cancel(cancelMe)
		names, late := f.wait(t)
		if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(names, want) {
			t.Fatalf("fired %v, want %v (cancelled must not fire)", names, want)
		}
		for i, l := range late {
			if l < 0 || l > 50*time.Millisecond {
				t.Errorf("job %s fired %v after its instant, want within [0, 50ms]", names[i], l)
			}
		}
	})
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

// TestPrepareRunsBeforeItsJob checks that a job's prepare runs once, on the
// clock, before the job fires, on each clock kind.
func TestPrepareRunsBeforeItsJob(t *testing.T) {
	forEachKind(t, func(t *testing.T, c Clock) {
		var order []string // written on the clock's thread only, read after done
		done := make(chan struct{})
		c.SchedulePrepared(time.Now().Add(20*time.Millisecond),
			func() { order = append(order, "prepare") },
			func(time.Time) { order = append(order, "fire"); close(done) })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the job did not fire within 5 s")
		}
		if want := []string{"prepare", "fire"}; !slices.Equal(order, want) {
			t.Fatalf("ran %v, want %v", order, want)
		}
	})
}

// TestPreparedJobWakesEarlier checks that a job with a prepare is ordered,
// and so woken for, PrepareAhead before its instant, and one without at it.
func TestPreparedJobWakesEarlier(t *testing.T) {
	q := &queue{spin: Spin, ahead: 800 * time.Microsecond}
	at := time.Now().Add(time.Hour)
	plain := q.newJob(at.Add(-100*time.Microsecond), nil, func(time.Time) {})
	prepared := q.newJob(at, func() {}, func(time.Time) {})
	if !plain.key.Equal(plain.at) {
		t.Errorf("a job without prepare has key %v, want its instant %v", plain.key, plain.at)
	}
	if want := at.Add(-800 * time.Microsecond); !prepared.key.Equal(want) {
		t.Errorf("a prepared job has key %v, want %v (PrepareAhead before its instant)", prepared.key, want)
	}
	q.push(plain, func(time.Time) {})
	q.push(prepared, func(time.Time) {})
	if got := q.armNext(func(time.Time) {}); !got.Equal(prepared.key) {
		t.Errorf("the clock arms for %v, want the prepared job's wake %v, which comes first", got, prepared.key)
	}
}

// forEachKind runs f as a subtest with a new clock of each kind.
func forEachKind(t *testing.T, f func(t *testing.T, c Clock)) {
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
			f(t, c)
		})
	}
}
