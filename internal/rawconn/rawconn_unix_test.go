//go:build unix

package rawconn

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// fakeConn is a syscall.RawConn whose poller is a script: each time a Read or
// Write callback asks to wait, the next of waits is what the wait returns (nil:
// the descriptor is said to be ready, perhaps for nothing; an error: the
// wait fails with it, as at a deadline or a Close).
type fakeConn struct {
	waits   []error
	waited  int
	control error // what Control itself returns
}

func (c *fakeConn) poll(f func(uintptr) bool) error {
	for !f(3) {
		if c.waited == len(c.waits) {
			return errors.New("fakeConn: waited more often than scripted")
		}
		c.waited++
		if err := c.waits[c.waited-1]; err != nil {
			return err
		}
	}
	return nil
}

func (c *fakeConn) Read(f func(uintptr) bool) error  { return c.poll(f) }
func (c *fakeConn) Write(f func(uintptr) bool) error { return c.poll(f) }
func (c *fakeConn) Control(f func(uintptr)) error {
	if c.control != nil {
		return c.control
	}
	f(3)
	return nil
}

// script returns a system call that fails with errs, one per call, then
// succeeds, and the count of its calls.
func script(errs ...error) (func(int) error, *int) {
	var calls int
	return func(fd int) error {
		calls++
		if fd != 3 {
			return errors.New("not the descriptor of the conn")
		}
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

func TestReadWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		errs      []error // the call's results before it succeeds
		waits     []error // the poller's wake-ups
		wantCalls int
		wantWaits int
		want      error // nil, or what errors.Is must find
		wantOp    bool  // the error is an *os.SyscallError naming the op
	}{
		{name: "at once", wantCalls: 1},
		{name: "interrupted twice: tried again without waiting", errs: []error{syscall.EINTR, syscall.EINTR}, wantCalls: 3},
		{name: "would block: waits, then reads", errs: []error{syscall.EAGAIN}, waits: []error{nil}, wantCalls: 2, wantWaits: 1},
		{name: "woken for nothing: waits again", errs: []error{syscall.EAGAIN, syscall.EAGAIN, syscall.EINTR}, waits: []error{nil, nil},
			wantCalls: 4, wantWaits: 2},
		{name: "deadline while waiting", errs: []error{syscall.EAGAIN}, waits: []error{os.ErrDeadlineExceeded}, wantCalls: 1, wantWaits: 1,
			want: os.ErrDeadlineExceeded},
		{name: "closed while waiting", errs: []error{syscall.EAGAIN}, waits: []error{os.ErrClosed}, wantCalls: 1, wantWaits: 1, want: os.ErrClosed},
		{name: "a hard error is returned, named", errs: []error{syscall.EBADF}, wantCalls: 1, want: syscall.EBADF, wantOp: true},
		{name: "a hard error after an interruption", errs: []error{syscall.EINTR, syscall.ENOBUFS}, wantCalls: 2, want: syscall.ENOBUFS, wantOp: true},
	} {
		for _, do := range []struct {
			name string
			fn   func(syscall.RawConn, string, func(int) error) error
		}{{"Read", Read}, {"Write", Write}, {"Op.Write", opWrite}} {
			t.Run(do.name+"/"+tc.name, func(t *testing.T) {
				c := &fakeConn{waits: tc.waits}
				f, calls := script(tc.errs...)
				err := do.fn(c, "recvmsg", f)
				if *calls != tc.wantCalls || c.waited != tc.wantWaits {
					t.Errorf("%d calls and %d waits, want %d and %d", *calls, c.waited, tc.wantCalls, tc.wantWaits)
				}
				switch {
				case tc.want == nil && err != nil:
					t.Errorf("error %v, want none", err)
				case tc.want != nil && !errors.Is(err, tc.want):
					t.Errorf("error %v, want %v", err, tc.want)
				}
				var se *os.SyscallError
				if tc.wantOp && (!errors.As(err, &se) || se.Syscall != "recvmsg") {
					t.Errorf("error %#v does not name recvmsg", err)
				}
			})
		}
	}
}

// opWrite is Write through an Op.
func opWrite(rc syscall.RawConn, name string, f func(int) error) error {
	return NewOp(name, f).Write(rc)
}

// TestOpIsReusable makes one Op fail, then succeed: each Write reports its
// own call's result, not the last one's.
func TestOpIsReusable(t *testing.T) {
	f, calls := script(syscall.EPERM, syscall.EAGAIN, syscall.EINTR)
	o := NewOp("sendto", f)
	if err := o.Write(&fakeConn{}); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("first Write: %v, want EPERM", err)
	}
	c := &fakeConn{waits: []error{nil}}
	if err := o.Write(c); err != nil || *calls != 4 || c.waited != 1 {
		t.Fatalf("second Write: %v after %d calls and %d waits, want nil after 4 and 1", err, *calls, c.waited)
	}
	if err := o.Write(&fakeConn{}); err != nil || *calls != 5 {
		t.Fatalf("third Write: %v after %d calls, want nil after 5", err, *calls)
	}
}

// TestOpAllocatesNothing is the point of an Op: a Write that waits in the
// poller and is interrupted allocates nothing (Write's allocates its
// callback).
func TestOpAllocatesNothing(t *testing.T) {
	var n int
	call := func(int) error {
		n++
		switch n % 3 {
		case 1:
			return syscall.EAGAIN
		case 2:
			return syscall.EINTR
		}
		return nil
	}
	c := &fakeConn{waits: make([]error, 1<<20)}
	o := NewOp("sendto", call)
	if allocs := testing.AllocsPerRun(1000, func() {
		if err := o.Write(c); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Op.Write: %v allocations, want 0", allocs)
	}
	t.Logf("Write: %v allocations a call", testing.AllocsPerRun(1000, func() { _ = Write(c, "sendto", call) }))
}

func TestControl(t *testing.T) {
	f, calls := script(syscall.EINTR, syscall.EINTR)
	if err := Control(&fakeConn{}, "setsockopt", f); err != nil || *calls != 3 {
		t.Errorf("interrupted Control: %v after %d calls, want nil after 3", err, *calls)
	}
	f, _ = script(syscall.EAGAIN)
	err := Control(&fakeConn{}, "bind", f)
	var se *os.SyscallError
	if !errors.Is(err, syscall.EAGAIN) || !errors.As(err, &se) || se.Syscall != "bind" {
		t.Errorf("Control: %v, want EAGAIN named bind (Control never waits)", err)
	}
	f, calls = script()
	if err := Control(&fakeConn{control: os.ErrClosed}, "bind", f); !errors.Is(err, os.ErrClosed) || *calls != 0 {
		t.Errorf("Control on a closed conn: %v after %d calls, want os.ErrClosed without a call", err, *calls)
	}
}

// TestReadThroughThePoller reads a datagram socket pair for real: Read waits
// in the poller until the peer writes, honours the read deadline, and
// returns once the file is closed under it.
func TestReadThroughThePoller(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer w.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// read reads one datagram; blocked is told when the read found nothing
	// to read, and so goes to wait in the poller.
	read := func(blocked chan<- struct{}) ([]byte, error) {
		buf := make([]byte, 16)
		var n int
		err := Read(rc, "read", func(fd int) (err error) {
			n, err = syscall.Read(fd, buf)
			if err == syscall.EAGAIN && blocked != nil {
				close(blocked)
				blocked = nil
			}
			return err
		})
		return buf[:max(n, 0)], err
	}
	type result struct {
		b   []byte
		err error
	}
	readAfter := func(do func()) result {
		blocked, done := make(chan struct{}), make(chan result, 1)
		go func() { b, err := read(blocked); done <- result{b, err} }()
		<-blocked
		do()
		select {
		case res := <-done:
			return res
		case <-time.After(5 * time.Second):
			t.Fatal("Read did not return")
			return result{}
		}
	}

	if res := readAfter(func() { w.Write([]byte("hello")) }); res.err != nil || string(res.b) != "hello" {
		t.Fatalf("read %q, %v; want hello", res.b, res.err)
	}
	if res := readAfter(func() { r.SetReadDeadline(time.Now()) }); !errors.Is(res.err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", res.err)
	}
	r.SetReadDeadline(time.Time{})
	if res := readAfter(func() { r.Close() }); res.err == nil {
		t.Fatal("read after Close succeeded")
	}
}
