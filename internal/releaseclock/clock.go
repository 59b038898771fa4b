// Package releaseclock fires a process's releases at their instants: one
// clock thread for every listener of the process, sleeping on a timerfd armed
// at the absolute instant (Linux) or on a runtime timer, then spinning for
// the last stretch. It also holds the clock's knobs, which only this module's
// packages (the listener and the benchmarks) may turn.
package releaseclock

import (
	"container/heap"
	"slices"
	"sync"
	"time"
)

// Kind selects how the release clock waits for an instant.
type Kind int

const (
	// TimerFD sleeps in read(2) on a timerfd armed at the absolute instant,
	// on an OS thread of its own with timer slack 1 ns (Linux; elsewhere it
	// is RuntimeTimer).
	TimerFD Kind = iota
	// RuntimeTimer waits on a Go runtime timer, from an ordinary goroutine.
	RuntimeTimer
)

// The clock's knobs. They are read when a clock starts (with the first open
// listener), so set them before then; the benchmarks use them to compare
// settings.
var (
	// Use is the kind of clock Acquire and New start.
	Use = TimerFD
	// Spin is how long before a release instant the clock stops sleeping
	// and spins on the time, on its own OS thread: it buys the last few
	// hundred microseconds of precision, and room for a wake-up that comes
	// late, for up to Spin (+ PrepareAhead) of one core's time per release.
	// As used (the server binary, pairs one after another), a wake-up came
	// 0.5-3.5 ms late in about 1% of releases; with 200 µs those releases
	// were that late, with 1 ms the bench's rows of 30 pairs had none
	// (p99 71-80 µs, idle and with 4 busy processes). 0 turns spinning off.
	Spin = time.Millisecond
	// PrepareAhead is how much earlier than Spin the clock wakes for a job
	// that has a prepare (SchedulePrepared): the prepare runs then, and the
	// thread spins from its end to the job's instant. The listener warms
	// its release's path there, which takes ~200 µs when cold, and the
	// thread's own wake-up after an idle spell comes 100-300 µs late
	// (measured as used), so that Spin alone leaves nothing for it.
	PrepareAhead = 800 * time.Microsecond
	// RealTime asks for SCHED_FIFO on the TimerFD clock's thread, where the
	// process may (root, or CAP_SYS_NICE, or an RLIMIT_RTPRIO): its wake-up
	// then goes before every ordinary thread's. Best effort; Scheduling says
	// what the thread got.
	RealTime = true
	// OnFault, if set, is told when the clock fails and what it does
	// instead; the listener turns it into an event.
	OnFault func(error)
)

// Clock fires jobs at their instants.
type Clock interface {
	// Schedule runs fire at instant at, on the clock's thread, with the
	// time it ran.
	Schedule(at time.Time, fire func(now time.Time)) *Job
	// SchedulePrepared is Schedule with prepare, which runs on the clock's
	// thread when it wakes for the job, Spin + PrepareAhead before at (or at
	// once if that has passed), before it spins to at: the listener warms
	// the release's path there.
	SchedulePrepared(at time.Time, prepare func(), fire func(now time.Time)) *Job
	// Cancel removes j if it has not fired yet.
	Cancel(j *Job)
	// Stop ends the clock; jobs not yet fired are dropped.
	Stop()
}

var (
	clockMu   sync.Mutex
	theClock  Clock
	clockRefs int
)

// Acquire returns the process-wide clock, starting it if needed. Every
// Acquire is paired with a Release.
func Acquire() (Clock, error) {
	clockMu.Lock()
	defer clockMu.Unlock()
	if theClock == nil {
		c, err := New()
		if err != nil {
			return nil, err
		}
		theClock = c
	}
	clockRefs++
	return theClock, nil
}

// Release drops a reference to the process-wide clock and stops it with the
// last.
func Release() {
	clockMu.Lock()
	defer clockMu.Unlock()
	if clockRefs--; clockRefs == 0 {
		theClock.Stop()
		theClock = nil
	}
}

// Job is one release waiting on the clock.
type Job struct {
	at      time.Time
	fire    func(now time.Time)
	prepare func()    // or nil
	key     time.Time // the heap's order: at, less PrepareAhead with a prepare
	index   int       // in the heap; -1 once fired or cancelled
}

type jobHeap []*Job

func (q jobHeap) Len() int           { return len(q) }
func (q jobHeap) Less(i, j int) bool { return q[i].key.Before(q[j].key) }
func (q jobHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *jobHeap) Push(x any)        { j := x.(*Job); j.index = len(*q); *q = append(*q, j) }
func (q *jobHeap) Pop() any {
	old := *q
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	j.index = -1
	return j
}

// queue is the clock's state shared by every implementation: jobs ordered by
// instant.
type queue struct {
	mu    sync.Mutex
	jobs  jobHeap
	spin  time.Duration // Spin when the clock started
	ahead time.Duration // PrepareAhead when the clock started
}

// newJob is a job at at; the clock wakes for it Spin before its key.
func (q *queue) newJob(at time.Time, prepare func(), fire func(time.Time)) *Job {
	j := &Job{at: at, fire: fire, prepare: prepare, key: at}
	if prepare != nil {
		j.key = at.Add(-q.ahead)
	}
	return j
}

// push adds j and, if it is now the earliest job, calls arm with its
// instant while still holding the lock, so that arming never races with
// armNext.
func (q *queue) push(j *Job, arm func(time.Time)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	heap.Push(&q.jobs, j)
	if j.index == 0 {
		arm(j.key)
	}
}

// armNext calls arm with the earliest instant (zero if there is none), and
// returns it, under the lock.
func (q *queue) armNext(arm func(time.Time)) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	var at time.Time
	if len(q.jobs) > 0 {
		at = q.jobs[0].key
	}
	arm(at)
	return at
}

// Cancel removes j if it has not fired yet.
func (q *queue) Cancel(j *Job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j.index >= 0 {
		heap.Remove(&q.jobs, j.index)
	}
}

// due pops the jobs whose key (their instant, or their prepare's) is before
// limit.
func (q *queue) due(limit time.Time) []*Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var js []*Job
	for len(q.jobs) > 0 && q.jobs[0].key.Before(limit) {
		js = append(js, heap.Pop(&q.jobs).(*Job))
	}
	return js
}

// fire runs the due jobs in one pass: first every job's prepare, then
// each job in the order of their instants, spinning up to each.
func (q *queue) fire(js []*Job) {
	slices.SortStableFunc(js, func(a, b *Job) int { return a.at.Compare(b.at) })
	for _, j := range js {
		if j.prepare != nil {
			j.prepare()
		}
	}
	for _, j := range js {
		j.fire(SpinUntil(j.at))
	}
}

// SpinUntil returns at t, or at once if t has passed, with the time it
// returned. It keeps the calling thread busy meanwhile.
func SpinUntil(t time.Time) time.Time {
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
	queue
	wake chan struct{}
	quit chan struct{}
	exit chan struct{}
}

func newGoClock() *goClock {
	c := &goClock{queue: queue{spin: Spin, ahead: PrepareAhead}, wake: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{})}
	go c.run()
	return c
}

func (c *goClock) Schedule(at time.Time, fire func(now time.Time)) *Job {
	return c.SchedulePrepared(at, nil, fire)
}

func (c *goClock) SchedulePrepared(at time.Time, prepare func(), fire func(now time.Time)) *Job {
	j := c.newJob(at, prepare, fire)
	c.push(j, func(time.Time) { poke(c.wake) })
	return j
}

// poke wakes whoever waits on ch, without blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *goClock) run() {
	defer close(c.exit)
	waitLoop(&c.queue, c.wake, c.quit)
}

// waitLoop fires q's jobs waiting on a runtime timer until quit is closed;
// wake says that an earlier job was scheduled.
func waitLoop(q *queue, wake, quit chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		if js := q.due(time.Now().Add(q.spin)); len(js) > 0 {
			q.fire(js)
			continue
		}
		var tc <-chan time.Time
		if at := q.armNext(func(time.Time) {}); !at.IsZero() {
			t.Reset(time.Until(at.Add(-q.spin)))
			tc = t.C
		}
		select {
		case <-tc:
		case <-wake:
		case <-quit:
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (c *goClock) Stop() {
	close(c.quit)
	<-c.exit
}
