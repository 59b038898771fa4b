package releaseclock

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// clock fires releases at their instants. It sleeps on a timerfd armed at an
// absolute CLOCK_REALTIME instant (timerfds take no timer slack), on an OS
// thread of its own (SCHED_FIFO where permitted, see RealTime), then spins
// for the last Spin. Kernel packet timestamps are CLOCK_REALTIME too, so the
// error a capture measures is the clock's. If the timerfd fails, the clock
// says so (OnFault) and waits on a runtime timer from then on: it never stops
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

// New starts a clock of kind Use, apart from the process-wide one.
func New() (Clock, error) {
	if Use == RuntimeTimer {
		return newGoClock(), nil
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("releaseclock: %w", os.NewSyscallError("timerfd_create", err))
	}
	c := &clock{queue: queue{spin: Spin}, tfd: tfd, wake: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{})}
	go c.run()
	return c, nil
}

// Schedule runs fire at instant at, on the clock's thread.
func (c *clock) Schedule(at time.Time, fire func(now time.Time)) *Job {
	j := &Job{at: at, fire: fire}
	c.push(j, c.arm)
	return j
}

// arm sets the timerfd to expire Spin before at; a zero at disarms it. It
// is called with the queue's lock held.
func (c *clock) arm(at time.Time) {
	var spec unix.ItimerSpec
	if c.stopping {
		spec.Value = unix.NsecToTimespec(1) // long past: expires at once
	} else if !at.IsZero() {
		ns := at.Add(-c.spin).UnixNano()
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
	setScheduling(PrepareThread())
	var buf [8]byte
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		if js := c.due(time.Now().Add(c.spin)); len(js) > 0 {
			c.fire(js)
			continue
		}
		c.armNext(c.arm)
		// Blocks until the armed instant, or until schedule arms an earlier
		// one, or until stop makes the timer expire at once.
		_, err := readTimer(c.tfd, buf[:])
		if err != nil && err != unix.EINTR && err != unix.EAGAIN {
			fault(fmt.Errorf("releaseclock: %w; releases now wait on the runtime timer, a few hundred microseconds late",
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

// PrepareThread prepares the calling thread to wait for instants, as the
// clock thread does: timer slack 1 ns and, if RealTime, SCHED_FIFO. It
// returns the policy the thread got, and why not SCHED_FIFO if it asked and
// did not get it. The caller must have locked its goroutine to the thread
// (runtime.LockOSThread) and end the goroutine without unlocking, so that
// the thread, and its policy, end with it.
func PrepareThread() (string, error) {
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	if !RealTime {
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
// "SCHED_OTHER"), and, when RealTime asked for SCHED_FIFO and did not get
// it, why. Before any clock has started it finds out on a thread of its own,
// the way the clock thread would.
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
		p, err := PrepareThread()
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// fault reports a failure of the clock, to OnFault and the log.
func fault(err error) {
	slog.Error("release clock failed", "err", err)
	if f := OnFault; f != nil {
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

// Wait is the clock's wait for one instant: Sleep until Spin before t, then
// SpinUntil t. It returns the time it returned at.
func (s *Sleeper) Wait(t time.Time) (time.Time, error) {
	if err := s.Sleep(t.Add(-Spin)); err != nil {
		return time.Now(), err
	}
	return SpinUntil(t), nil
}

// Close closes the timerfd.
func (s *Sleeper) Close() error { return unix.Close(s.tfd) }
