//go:build unix

package rawconn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Seams for fault injection in tests.
var (
	getsockoptInt = unix.GetsockoptInt
	getpeername   = unix.Getpeername
)

// Connect connects the non-blocking socket of rc with connect (a call of
// connect(2) on the descriptor it is given), as net and mdlayher/socket do:
// EINPROGRESS, EALREADY and EINTR mean the connect goes on, and it waits in
// the runtime poller until the socket is writable, honouring the write
// deadline and Close; then SO_ERROR says how it ended, and getpeername tells
// a finished connect from a wake-up for nothing, after which it waits again.
// Errors are wrapped as Write's, named "connect".
func Connect(rc syscall.RawConn, connect func(fd int) error) error {
	started := false
	return Write(rc, "connect", func(fd int) error {
		if !started {
			started = true
			switch err := connect(fd); err {
			case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
				return unix.EAGAIN // wait until writable
			case unix.EISCONN:
				return nil
			default:
				return err
			}
		}
		soerr, err := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		switch err := syscall.Errno(soerr); err {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return unix.EAGAIN
		case unix.EISCONN:
			return nil
		case 0:
			if _, err := getpeername(fd); err != nil {
				return unix.EAGAIN // woken before the connect finished
			}
			return nil
		default:
			return err
		}
	})
}
