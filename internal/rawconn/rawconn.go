// Package rawconn runs system calls on a descriptor that the runtime poller
// watches, the one way for the whole module: a call interrupted by a signal
// (EINTR) is made again at once, one that would block (EAGAIN) waits in the
// poller, so that it honours deadlines and Close, and is made again when the
// descriptor is ready, as often as the poller wakes it for nothing, and an
// error comes back wrapped in os.NewSyscallError with the call's name.
//
// It is what github.com/mdlayher/socket's Conn does inside its read, write
// and control methods, without the Conn: the callers here own their
// descriptors as *os.File and net.Conn already. Read and Write build their
// callback for the poller on each call; an Op is a Write that builds it once,
// for the paths that must allocate nothing.
package rawconn

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Read calls f with the descriptor of rc until it neither was interrupted nor
// would block, waiting for rc to be readable in the runtime poller after each
// EAGAIN. It returns the poller's error wrapped with op (os.ErrDeadlineExceeded
// when the read deadline passed; when rc was closed, the poller's own error,
// which a caller tells by a closed flag of its own), or f's last error as an
// *os.SyscallError named op, or nil. f runs once per try and
// must leave its results where the caller reads them after Read returns.
// Each call allocates its callback for the poller; a hot path uses an Op.
func Read(rc syscall.RawConn, op string, f func(fd int) error) error {
	var err error
	perr := rc.Read(func(fd uintptr) bool { return try(fd, f, &err) })
	return wrap(op, perr, err)
}

// Write is Read for a call that waits for rc to be writable.
func Write(rc syscall.RawConn, op string, f func(fd int) error) error {
	var err error
	perr := rc.Write(func(fd uintptr) bool { return try(fd, f, &err) })
	return wrap(op, perr, err)
}

// Op is a system call made through the poller as Write makes it, whose
// callback for the poller is built once, by NewOp, so that each Write
// allocates nothing: for the paths that must not (a release's send, which
// a thread makes while the garbage collector may be marking; one that
// allocated then would be made to help mark). Its call takes its arguments
// from where its caller leaves them before each Write (a method value of
// the caller's bound once, say). An Op makes one call at a time: each
// goroutine needs its own.
type Op struct {
	name string
	f    func(fd int) error
	err  error                 // f's last result, during a Write
	poll func(fd uintptr) bool // o.try, bound once
}

// NewOp returns the Op that calls f, named name in its errors.
func NewOp(name string, f func(fd int) error) *Op {
	o := &Op{name: name, f: f}
	o.poll = o.try
	return o
}

// Write is Write(rc, name, f), without allocating.
func (o *Op) Write(rc syscall.RawConn) error {
	perr := rc.Write(o.poll)
	err := o.err
	o.err = nil
	return wrap(o.name, perr, err)
}

func (o *Op) try(fd uintptr) bool { return try(fd, o.f, &o.err) }

// try is one readiness of the poller's: it calls f until it is not
// interrupted, leaves its result in err, and reports whether the call is
// done (false: it would block, and the poller is to wait).
func try(fd uintptr, f func(fd int) error, err *error) bool {
	*err = retry(int(fd), f)
	return !wouldBlock(*err)
}

// Control calls f with the descriptor of rc, again while it is interrupted,
// for calls that never wait (setsockopt, bind). An EAGAIN is returned as it
// is, wrapped like any other error.
func Control(rc syscall.RawConn, op string, f func(fd int) error) error {
	var err error
	perr := rc.Control(func(fd uintptr) { err = retry(int(fd), f) })
	return wrap(op, perr, err)
}

// retry calls f until it is not interrupted by a signal. An EINTR is not
// handed to the poller, which would wait for readiness that may already have
// been reported, and so wait for the next packet instead of reading this one.
func retry(fd int, f func(fd int) error) error {
	for {
		if err := f(fd); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// wouldBlock reports whether err says that the call would have blocked.
func wouldBlock(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
}

// wrap returns the poller's error perr, or the call's error err, each
// saying which operation failed.
func wrap(op string, perr, err error) error {
	switch {
	case perr != nil:
		return fmt.Errorf("%s: %w", op, perr)
	case err == nil:
		return nil
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return err // named already
	}
	return os.NewSyscallError(op, err)
}
