package listener

import (
	"container/heap"
	"sync"
	"time"
)

// ClockKind selects how the release clock waits for an instant.
type ClockKind int

const (
	// TimerFD sleeps in read(2) on a timerfd armed at the absolute instant,
	// on an OS thread of its own with timer slack 1 ns (Linux; elsewhere it
	// is RuntimeTimer).
	TimerFD ClockKind = iota
	// RuntimeTimer waits on a Go runtime timer, from an ordinary goroutine.
	RuntimeTimer
)

// Clock is the clock the process-wide release clock uses. It is read when
// the clock starts (with the first open listener), so set it before then;
// the benchmarks use it to compare the two.
var Clock = TimerFD

// Spin is how long before a release instant the clock stops sleeping and
// spins on the time, on its own OS thread: it buys the last few hundred
// microseconds of precision for up to Spin of one core's time per release.
// 0 turns spinning off. Like Clock, set it before opening listeners.
var Spin = 200 * time.Microsecond

// scheduler fires jobs at their instants.
type scheduler interface {
	schedule(at time.Time, fire func(now time.Time) (after func())) *job
	cancel(j *job)
	// later runs f on the event goroutine, after what is already queued.
	later(f func())
	stop()
}

var (
	clockMu   sync.Mutex
	theClock  scheduler
	clockRefs int
)

// acquireClock returns the process-wide clock, starting it if needed.
func acquireClock() (scheduler, error) {
	clockMu.Lock()
	defer clockMu.Unlock()
	if theClock == nil {
		c, err := newClock()
		if err != nil {
			return nil, err
		}
		theClock = c
	}
	clockRefs++
	return theClock, nil
}

// releaseClock drops a reference to the clock and stops it with the last.
func releaseClock() {
	clockMu.Lock()
	defer clockMu.Unlock()
	if clockRefs--; clockRefs == 0 {
		theClock.stop()
		theClock = nil
	}
}

// job is one release waiting on the clock.
type job struct {
	at    time.Time
	fire  func(now time.Time) (after func())
	index int // in the heap; -1 once fired or cancelled
}

type jobHeap []*job

func (q jobHeap) Len() int           { return len(q) }
func (q jobHeap) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q jobHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *jobHeap) Push(x any)        { j := x.(*job); j.index = len(*q); *q = append(*q, j) }
func (q *jobHeap) Pop() any {
	old := *q
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	j.index = -1
	return j
}

// queue is the clock's state shared by every implementation: jobs ordered by
// instant, and what was fired late is handed to a goroutine of its own so
// that logging never delays the next release.
type queue struct {
	mu    sync.Mutex
	jobs  jobHeap
	after chan func()
	done  chan struct{}
}

func newQueue() *queue {
	q := &queue{after: make(chan func(), 4096), done: make(chan struct{})}
	go q.runAfter()
	return q
}

func (q *queue) runAfter() {
	for f := range q.after {
		f()
	}
	close(q.done)
}

// push adds j and, if it is now the earliest job, calls arm with its
// instant while still holding the lock, so that arming never races with
// armNext.
func (q *queue) push(j *job, arm func(time.Time)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	heap.Push(&q.jobs, j)
	if j.index == 0 {
		arm(j.at)
	}
}

// armNext calls arm with the earliest instant (zero if there is none), and
// returns it, under the lock.
func (q *queue) armNext(arm func(time.Time)) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	var at time.Time
	if len(q.jobs) > 0 {
		at = q.jobs[0].at
	}
	arm(at)
	return at
}

// cancel removes j if it has not fired yet.
func (q *queue) cancel(j *job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j.index >= 0 {
		heap.Remove(&q.jobs, j.index)
	}
}

// due pops the jobs whose instant is before limit, earliest first.
func (q *queue) due(limit time.Time) []*job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var js []*job
	for len(q.jobs) > 0 && q.jobs[0].at.Before(limit) {
		js = append(js, heap.Pop(&q.jobs).(*job))
	}
	return js
}

// fire runs the due jobs in one pass, spinning up to each one's instant,
// then runs their follow-ups.
func (q *queue) fire(js []*job) {
	var afters []func()
	for _, j := range js {
		now := spinUntil(j.at)
		if f := j.fire(now); f != nil {
			afters = append(afters, f)
		}
	}
	for _, f := range afters {
		f() // they only queue events, after every release of the pass
	}
}

// later queues f for the event goroutine. It blocks while the queue is full:
// events are never dropped, and a release never comes through here.
func (q *queue) later(f func()) { q.after <- f }

// stop ends the follow-up goroutine once it has run what is queued.
func (q *queue) stop() {
	close(q.after)
	<-q.done
}

// spinUntil returns at t, or at once if t has passed, with the time it
// returned.
func spinUntil(t time.Time) time.Time {
	for {
		now := time.Now()
		if !now.Before(t) {
			return now
		}
	}
}

// goClock is the portable clock: a goroutine and a runtime timer. It wakes
// a few hundred microseconds late (the runtime's timer precision).
type goClock struct {
	*queue
	wake chan struct{}
	quit chan struct{}
	exit chan struct{}
}

func newGoClock() *goClock {
	c := &goClock{queue: newQueue(), wake: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{})}
	go c.run()
	return c
}

func (c *goClock) schedule(at time.Time, fire func(now time.Time) func()) *job {
	j := &job{at: at, fire: fire}
	c.push(j, func(time.Time) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	})
	return j
}

func (c *goClock) run() {
	defer close(c.exit)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		if js := c.due(time.Now().Add(Spin)); len(js) > 0 {
			c.fire(js)
			continue
		}
		var tc <-chan time.Time
		if at := c.armNext(func(time.Time) {}); !at.IsZero() {
			t.Reset(time.Until(at.Add(-Spin)))
			tc = t.C
		}
		select {
		case <-tc:
		case <-c.wake:
		case <-c.quit:
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (c *goClock) stop() {
	close(c.quit)
	<-c.exit
	c.queue.stop()
}
