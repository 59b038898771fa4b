// Package releaseclock fires a process's releases at their instants: one
// clock thread for every listener of the process, sleeping on a timerfd armed
// at the absolute instant (Linux) or on a runtime timer, then spinning for
// the last stretch.
//
// It is built for many releases at once. Jobs due close together (within
// Config.Spin of each other) form one batch: the thread wakes once for the
// batch, runs the jobs' prepares only where they cannot delay an earlier
// job, and spins once through the batch, firing each job at its instant, in
// instant order. A job scheduled while the thread spins joins the batch.
package releaseclock

import (
	"container/heap"
	"slices"
	"sync"
	"sync/atomic"
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

// Config is how a clock waits. The listener passes it down when it starts
// the process's clock; DefaultConfig is what it passes unless told
// otherwise.
type Config struct {
	// Kind is the kind of clock.
	Kind Kind
	// Spin is how long before a release instant the clock stops sleeping
	// and spins on the time, on its own OS thread: it buys the last few
	// hundred microseconds of precision, and room for a wake-up that comes
	// late, for up to Spin (+ PrepareAhead) of one core's time per batch of
	// releases. As used (the server binary, pairs one after another), a
	// wake-up came 0.5-3.5 ms late in about 1% of releases; 200 µs left
	// those releases that late; with 1 ms the bench's rows of 30 pairs had
	// none, though one release in ~400 still went past it in longer runs.
	// 0 turns spinning off.
	Spin time.Duration
	// PrepareAhead is how much earlier than Spin the clock wakes for a job
	// that has a prepare (SchedulePrepared): the prepare runs then. The
	// listener warms its release's path there, which takes ~200 µs when
	// cold, and the thread's own wake-up after an idle spell comes 100-300
	// µs late (measured as used), so that Spin alone leaves nothing for it.
	PrepareAhead time.Duration
	// Rewarm, if positive, runs a job's prepare a second time Rewarm before
	// its instant (the path cools again within ~600 µs).
	Rewarm time.Duration
	// RealTime asks for SCHED_FIFO on the TimerFD clock's thread, where the
	// process may (root, or CAP_SYS_NICE, or an RLIMIT_RTPRIO): its wake-up
	// then goes before every ordinary thread's. Best effort; Scheduling says
	// what the thread got.
	RealTime bool
	// OnFault, if set, is told when the clock fails and what it does
	// instead; the listener turns it into an event.
	OnFault func(error)
}

// DefaultConfig is the clock as shipped: timerfd, spin 1 ms, prepares 800 µs
// before that and again 100 µs before the instant, SCHED_FIFO where allowed.
func DefaultConfig() Config {
	return Config{Kind: TimerFD, Spin: time.Millisecond, PrepareAhead: 800 * time.Microsecond,
		Rewarm: 100 * time.Microsecond, RealTime: true}
}

// Clock fires jobs at their instants.
type Clock interface {
	// Schedule runs fire at instant at, on the clock's thread, with the
	// time it ran.
	Schedule(at time.Time, fire func(now time.Time)) *Job
	// SchedulePrepared is Schedule with prepare, which runs on the clock's
	// thread when it wakes for the job, Spin + PrepareAhead before at (or
	// later, once no earlier job of the batch can be delayed by it), and
	// again Rewarm before at: the listener warms the release's path there.
	// A prepare that would delay an earlier job's instant is skipped.
	SchedulePrepared(at time.Time, prepare func(), fire func(now time.Time)) *Job
	// Cancel removes j if it has not fired yet.
	Cancel(j *Job)
	// Stats says what the clock has done so far.
	Stats() Stats
	// Stop ends the clock; jobs not yet fired are dropped.
	Stop()
}

// Stats is what a clock has done since it started.
type Stats struct {
	// Fired counts the jobs fired; Batches the wake-ups that fired them.
	Fired, Batches uint64
	// Prepared counts prepares run; Skipped those left out because they
	// would have delayed an earlier job.
	Prepared, Skipped uint64
	// CPU is the clock thread's own CPU time (user and system) spent on
	// batches, from CLOCK_THREAD_CPUTIME_ID (TimerFD clock only).
	CPU time.Duration
	// TID is the clock thread's id (TimerFD clock only), named
	// ThreadName in /proc/PID/task/TID/comm.
	TID int
}

// ThreadName is the name the TimerFD clock gives its thread
// (prctl(PR_SET_NAME)), so that an observer can find it in
// /proc/PID/task/*/comm.
const ThreadName = "synhold-clock"

var (
	clockMu   sync.Mutex
	theClock  Clock
	clockRefs int
)

// Acquire returns the process-wide clock, starting it with cfg if needed
// (a clock already running keeps the configuration it started with). Every
// Acquire is paired with a Release.
func Acquire(cfg Config) (Clock, error) {
	clockMu.Lock()
	defer clockMu.Unlock()
	if theClock == nil {
		c, err := New(cfg)
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

// Current returns the statistics of the process-wide clock, and false if
// none runs.
func Current() (Stats, bool) {
	clockMu.Lock()
	defer clockMu.Unlock()
	if theClock == nil {
		return Stats{}, false
	}
	return theClock.Stats(), true
}

// Job is one release waiting on the clock.
type Job struct {
	at      time.Time
	fire    func(now time.Time)
	prepare func()    // or nil
	key     time.Time // the heap's order: at, less PrepareAhead with a prepare
	index   int       // in the heap; -1 once taken or cancelled
	// Owned by the clock's thread once taken into a batch.
	prepared int  // prepares run (or skipped): 0, 1, or 2 with Rewarm
	fired    bool // fired, or cancelled after it was taken
	// cancelled is set by Cancel for a job already taken into a batch.
	cancelled atomic.Bool
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

// noKey is nextKey when the heap is empty.
const noKey = int64(1<<63 - 1)

// queue is the clock's state shared by every implementation: jobs ordered by
// key, and the batch the thread is working through.
type queue struct {
	cfg Config

	mu   sync.Mutex
	jobs jobHeap
	// nextKey is the earliest key in the heap (UnixNano), or noKey, so that
	// the spinning thread sees a job scheduled meanwhile without the lock.
	nextKey atomic.Int64

	// prepCost is the longest a prepare took lately, at wake-up ([0]: the
	// path cold) and again before the instant ([1]: warm), what a prepare
	// is expected to take when deciding whether it fits before an earlier
	// job. The thread's only.
	prepCost [2]time.Duration

	// Statistics, written by the thread, read by Stats.
	fired, batches, prepared, skipped atomic.Uint64
	cpu                               atomic.Int64 // ns
	tid                               atomic.Int64
}

// init readies an empty queue for a clock configured by cfg.
func (q *queue) init(cfg Config) {
	q.cfg, q.prepCost = cfg, initialPrepCost
	q.nextKey.Store(noKey)
}

// initialPrepCost is what a prepare is expected to take before one has
// been measured: a warm-up of a cold path (~200 µs), then of a warm one.
var initialPrepCost = [2]time.Duration{250 * time.Microsecond, 30 * time.Microsecond}

// newJob is a job at at; the clock wakes for it Spin before its key.
func (q *queue) newJob(at time.Time, prepare func(), fire func(time.Time)) *Job {
	j := &Job{at: at, fire: fire, prepare: prepare, key: at}
	if prepare != nil {
		j.key = at.Add(-q.cfg.PrepareAhead)
	}
	return j
}

// setNext records the heap's earliest key; q.mu is held.
func (q *queue) setNext() {
	if len(q.jobs) == 0 {
		q.nextKey.Store(noKey)
		return
	}
	q.nextKey.Store(q.jobs[0].key.UnixNano())
}

// push adds j and, if it is now the earliest job, calls arm with its
// instant while still holding the lock, so that arming never races with
// armNext.
func (q *queue) push(j *Job, arm func(time.Time)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	heap.Push(&q.jobs, j)
	q.setNext()
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
		q.setNext()
		return
	}
	j.cancelled.Store(true) // taken into a batch: the thread skips it
}

// due pops the jobs whose key (their instant, or their prepare's) is before
// limit, onto batch.
func (q *queue) due(limit time.Time, batch []*Job) []*Job {
	if q.nextKey.Load() >= limit.UnixNano() {
		return batch
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) > 0 && q.jobs[0].key.Before(limit) {
		batch = append(batch, heap.Pop(&q.jobs).(*Job))
	}
	q.setNext()
	return batch
}

// runBatch works through the jobs due within Spin of now, and those that
// come due while it does, until none is left: it fires every job at its
// instant, in instant order, and runs a job's prepare only where it is
// expected to end before the earliest job not yet fired. It spins
// meanwhile. It returns how many jobs it fired.
func (q *queue) runBatch(batch []*Job) int {
	fired := 0
	sortBatch(batch)
	for {
		now := time.Now()
		// Take in what came due meanwhile (scheduled while spinning, or
		// nearing its instant).
		if n := len(batch); q.nextKey.Load() < now.Add(q.cfg.Spin).UnixNano() {
			if batch = q.due(now.Add(q.cfg.Spin), batch); len(batch) > n {
				sortBatch(batch)
			}
		}
		if len(batch) == 0 {
			return fired
		}
		// Fire every job whose instant has come, in order.
		if !batch[0].at.After(now) {
			for _, j := range batch {
				if j.at.After(now) {
					break
				}
				j.fired = true
				if j.cancelled.Load() {
					continue
				}
				j.fire(now)
				fired++
				now = time.Now()
			}
			batch = slices.DeleteFunc(batch, func(j *Job) bool { return j.fired })
			continue
		}
		// A prepare that ends before the earliest instant still to come.
		if j := q.nextPrepare(batch, now); j != nil {
			start := time.Now()
			j.prepare()
			q.prepared.Add(1)
			took, c := time.Since(start), &q.prepCost[j.prepared-1]
			*c = max(took, *c-*c/16) // decays slowly towards what prepares take now
			continue
		}
	}
}

// nextPrepare returns the job whose prepare should run now, if any, having
// marked skipped those that can no longer fit: a prepare runs only if it is
// expected (prepCost) to end before the instant of every other unfired job,
// and, the first time, before its own.
func (q *queue) nextPrepare(batch []*Job, now time.Time) *Job {
	// The earliest instant of another job still to come: the batch is
	// sorted, and a job still in the heap has its instant at or after its
	// key. A job's prepare may hold up the job itself (as a warm-up 100 µs
	// before the instant that runs slow), never another.
	heapFirst := time.Unix(0, q.nextKey.Load())
	fits := func(j *Job, phase int) bool {
		first := heapFirst
		for _, o := range batch[:min(2, len(batch))] {
			if o != j && o.at.Before(first) {
				first = o.at
			}
		}
		return now.Add(q.prepCost[phase]).Before(first)
	}
	for _, j := range batch {
		if j.prepare == nil || j.prepared >= 2 {
			continue
		}
		switch j.prepared {
		case 0: // at wake-up
			if fits(j, 0) {
				j.prepared = 1
				return j
			}
			if now.Add(q.prepCost[0]).After(j.at) {
				j.prepared = 2 // no room left before its own instant
				q.skip(0)
			}
		case 1: // again Rewarm before the instant
			if q.cfg.Rewarm <= 0 {
				j.prepared = 2
				continue
			}
			if now.Before(j.at.Add(-q.cfg.Rewarm)) {
				continue // not yet
			}
			j.prepared = 2
			if fits(j, 1) {
				return j
			}
			q.skip(1)
		}
	}
	return nil
}

// skip counts a prepare of phase left out. Its expected cost decays, by a
// quarter a skip (a prepare that runs decays it by 1/16), so that one slow
// prepare does not have every later one of its phase skipped for good.
func (q *queue) skip(phase int) {
	q.skipped.Add(1)
	c := &q.prepCost[phase]
	*c = max(initialPrepCost[phase], *c-*c/4)
}

func sortBatch(b []*Job) {
	slices.SortStableFunc(b, func(a, b *Job) int { return a.at.Compare(b.at) })
}

// Stats says what the clock has done so far.
func (q *queue) Stats() Stats {
	return Stats{Fired: q.fired.Load(), Batches: q.batches.Load(), Prepared: q.prepared.Load(),
		Skipped: q.skipped.Load(), CPU: time.Duration(q.cpu.Load()), TID: int(q.tid.Load())}
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

func newGoClock(cfg Config) *goClock {
	c := &goClock{wake: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{})}
	c.init(cfg)
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
		if js := q.due(time.Now().Add(q.cfg.Spin), nil); len(js) > 0 {
			q.fired.Add(uint64(q.runBatch(js)))
			q.batches.Add(1)
			continue
		}
		var tc <-chan time.Time
		if at := q.armNext(func(time.Time) {}); !at.IsZero() {
			t.Reset(time.Until(at.Add(-q.cfg.Spin)))
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
