package releaseclock

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// clock fires releases at their instants. It sleeps on a timerfd armed at an
// absolute CLOCK_REALTIME instant (timerfds take no timer slack), on an OS
// thread of its own (SCHED_FIFO where permitted, see RealTime), then spins
// for the last Spin, through the batch of jobs due then (see runBatch). Its
// thread is named ThreadName. Kernel packet timestamps are CLOCK_REALTIME too, so the
// error a capture measures is the clock's. If the timerfd fails, the clock
// says so (Config.OnFault) and waits on a runtime timer from then on: it never stops
// firing while it has listeners.
type clock struct {
	queue
	tfd  int
	wake chan struct{} // an earlier job, or stop, for the fallback wait
	quit chan struct{}
	exit chan struct{}
	// stopping, guarded by the queue's lock like every arm, keeps the
	// timer armed to fire at once after stop, so that the run loop cannot
	// disarm it between its look at quit and its read.
	stopping bool
}

// readTimer is the seam through which the clock thread waits on its timerfd;
// tests replace it to make the wait fail.
var readTimer = unix.Read

// New starts a clock configured by cfg, apart from the process-wide one.
func New(cfg Config) (Clock, error) {
	if cfg.Kind == RuntimeTimer {
		return newGoClock(cfg), nil
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("releaseclock: %w", os.NewSyscallError("timerfd_create", err))
	}
	c := &clock{tfd: tfd, wake: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{})}
	c.init(cfg)
	go c.run()
	return c, nil
}

// Schedule runs fire at instant at, on the clock's thread.
func (c *clock) Schedule(at time.Time, fire func(now time.Time)) *Job {
	return c.SchedulePrepared(at, nil, fire)
}

// SchedulePrepared is Schedule with prepare, run when the thread wakes for
// the job, before it spins.
func (c *clock) SchedulePrepared(at time.Time, prepare func(), fire func(now time.Time)) *Job {
	j := c.newJob(at, prepare, fire)
	c.push(j, c.arm)
	return j
}

// arm sets the timerfd to expire Spin before at (a job's key); a zero at disarms it. It
// is called with the queue's lock held.
func (c *clock) arm(at time.Time) {
	var spec unix.ItimerSpec
	if c.stopping {
		spec.Value = unix.NsecToTimespec(1) // long past: expires at once
	} else if !at.IsZero() {
		ns := at.Add(-c.cfg.Spin).UnixNano()
		if ns <= 0 {
			ns = 1
		}
		spec.Value = unix.NsecToTimespec(ns)
	}
	// Only EBADF or EINVAL can come back, for a closed clock or a bad time;
	// the run loop would then see the next job on its next wake-up.
	_ = unix.TimerfdSettime(c.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil)
	poke(c.wake)
}

func (c *clock) run() {
	runtime.LockOSThread() // never unlocked: the thread, and its policy, end with the clock
	defer close(c.exit)
	setScheduling(PrepareThread(c.cfg.RealTime))
	nameThread()
	c.tid.Store(int64(unix.Gettid()))
	var buf [8]byte
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		if js := c.due(time.Now().Add(c.cfg.Spin), nil); len(js) > 0 {
			before := threadCPU()
			c.fired.Add(uint64(c.runBatch(js)))
			c.batches.Add(1)
			c.cpu.Add(int64(threadCPU() - before))
			continue
		}
		c.armNext(c.arm)
		// Blocks until the armed instant, or until schedule arms an earlier
		// one, or until stop makes the timer expire at once.
		_, err := readTimer(c.tfd, buf[:])
		if err != nil && err != unix.EINTR && err != unix.EAGAIN {
			c.fault(fmt.Errorf("releaseclock: %w; releases now wait on the runtime timer, a few hundred microseconds late",
				os.NewSyscallError("read timerfd", err)))
			waitLoop(&c.queue, c.wake, c.quit)
			return
		}
	}
}

// Stop ends the clock thread; jobs not yet fired are dropped.
func (c *clock) Stop() {
	close(c.quit)
	c.mu.Lock()
	c.stopping = true
	c.arm(time.Time{})
	c.mu.Unlock()
	<-c.exit
	unix.Close(c.tfd)
}

const fifoPriority = 10

var (
	schedMu     sync.Mutex
	schedPolicy string
	schedErr    error
)

// threadName is ThreadName as prctl takes it, NUL-terminated, where the
// garbage collector does not move it.
var threadName = []byte(ThreadName + "\x00")

// nameThread names the calling thread ThreadName.
func nameThread() {
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&threadName[0])), 0, 0, 0)
}

// threadCPU is the calling thread's CPU time so far, user and system, as
// getrusage(RUSAGE_THREAD) counts it but to the nanosecond
// (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// PrepareThread prepares the calling thread to wait for instants, as the
// clock thread does: timer slack 1 ns and, if realTime, SCHED_FIFO. It
// returns the policy the thread got, and why not SCHED_FIFO if it asked and
// did not get it. The caller must have locked its goroutine to the thread
// (runtime.LockOSThread) and end the goroutine without unlocking, so that
// the thread, and its policy, end with it.
func PrepareThread(realTime bool) (string, error) {
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	if !realTime {
		return "SCHED_OTHER", nil
	}
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: fifoPriority}
	if err := schedSetAttr(0, &attr, 0); err != nil {
		return "SCHED_OTHER", fmt.Errorf("releaseclock: SCHED_FIFO refused (needs CAP_SYS_NICE or RLIMIT_RTPRIO): %w",
			os.NewSyscallError("sched_setattr", err))
	}
	return fmt.Sprintf("SCHED_FIFO %d", fifoPriority), nil
}

// schedSetAttr is the seam through which the clock thread asks for SCHED_FIFO.
var schedSetAttr = unix.SchedSetAttr

func setScheduling(policy string, err error) {
	schedMu.Lock()
	schedPolicy, schedErr = policy, err
	schedMu.Unlock()
}

// Scheduling says how the clock thread is scheduled ("SCHED_FIFO 10" or
// "SCHED_OTHER"), and, when Config.RealTime asked for SCHED_FIFO and did
// not get it, why. Before any clock has started it finds out on a thread of
// its own, the way a clock thread of DefaultConfig would.
func Scheduling() (string, error) {
	schedMu.Lock()
	p, err := schedPolicy, schedErr
	schedMu.Unlock()
	if p != "" {
		return p, err
	}
	type result struct {
		p   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		p, err := PrepareThread(DefaultConfig().RealTime)
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// fault reports a failure of the clock, to Config.OnFault and the log.
func (c *clock) fault(err error) {
	slog.Error("release clock failed", "err", err)
	if f := c.cfg.OnFault; f != nil {
		f(err)
	}
}

// Sleeper puts the calling thread to sleep until absolute CLOCK_REALTIME
// instants on a timerfd of its own, the way the clock thread waits; the
// benchmarks use it to measure that wait without a listener.
type Sleeper struct{ tfd int }

// NewSleeper opens a Sleeper's timerfd.
func NewSleeper() (*Sleeper, error) {
	tfd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("releaseclock: %w", os.NewSyscallError("timerfd_create", err))
	}
	return &Sleeper{tfd: tfd}, nil
}

// Sleep returns once t has passed (at once if it has already).
func (s *Sleeper) Sleep(t time.Time) error {
	ns := t.UnixNano()
	if ns <= 0 {
		ns = 1
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(ns)}
	if err := unix.TimerfdSettime(s.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return fmt.Errorf("releaseclock: %w", os.NewSyscallError("timerfd_settime", err))
	}
	var buf [8]byte
	for {
		_, err := unix.Read(s.tfd, buf[:])
		if err != unix.EINTR {
			return os.NewSyscallError("read timerfd", err)
		}
	}
}

// Wait is the clock's wait for one instant: Sleep until spin before t, then
// SpinUntil t. It returns the time it returned at.
func (s *Sleeper) Wait(t time.Time, spin time.Duration) (time.Time, error) {
	if err := s.Sleep(t.Add(-spin)); err != nil {
		return time.Now(), err
	}
	return SpinUntil(t), nil
}

// Close closes the timerfd.
func (s *Sleeper) Close() error { return unix.Close(s.tfd) }
