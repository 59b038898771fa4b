package releaseclock

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// clock fires releases at their instants. It sleeps on a timerfd armed at an
// absolute CLOCK_REALTIME instant (timerfds take no timer slack), on an OS
// thread of its own, then spins for the last Spin. Kernel packet timestamps
// are CLOCK_REALTIME too, so the error a capture measures is the clock's.
type clock struct {
	*queue
	tfd  int
	quit chan struct{}
	exit chan struct{}
	// stopping, guarded by the queue's lock like every arm, keeps the
	// timer armed to fire at once after stop, so that the run loop cannot
	// disarm it between its look at quit and its read.
	stopping bool
}

// New starts a clock of kind Use, apart from the process-wide one.
func New() (Clock, error) {
	if Use == RuntimeTimer {
		return newGoClock(), nil
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("releaseclock: %w", os.NewSyscallError("timerfd_create", err))
	}
	c := &clock{queue: newQueue(), tfd: tfd, quit: make(chan struct{}), exit: make(chan struct{})}
	go c.run()
	return c, nil
}

// Schedule runs fire at instant at, on the clock's thread.
func (c *clock) Schedule(at time.Time, fire func(now time.Time) func()) *Job {
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
		ns := at.Add(-Spin).UnixNano()
		if ns <= 0 {
			ns = 1
		}
		spec.Value = unix.NsecToTimespec(ns)
	}
	// Only EBADF or EINVAL can come back, for a closed clock or a bad time;
	// the run loop would then see the next job on its next wake-up.
	_ = unix.TimerfdSettime(c.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func (c *clock) run() {
	runtime.LockOSThread() // this thread is never handed back to the runtime
	defer close(c.exit)
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	var buf [8]byte
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		if js := c.due(time.Now().Add(Spin)); len(js) > 0 {
			c.fire(js)
			continue
		}
		c.armNext(c.arm)
		// Blocks until the armed instant, or until schedule arms an earlier
		// one, or until stop makes the timer expire at once.
		if _, err := unix.Read(c.tfd, buf[:]); err != nil && err != unix.EINTR && err != unix.EAGAIN {
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
	c.queue.stop()
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
