package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/synhold/synhold/internal/netaddr"
	"golang.org/x/sys/unix"
)

// rawClient is a TCP client opened with a raw non-blocking connect(2), so
// that the time it records is taken right before the system call that sends
// the SYN, and its address is known before the SYN leaves.
type rawClient struct {
	// Local is the client's address, bound before connect.
	Local netip.AddrPort
	// Started is time.Now() right before connect(2).
	Started time.Time
	f       *os.File
	rc      syscall.RawConn
}

// dialStart opens a socket bound to the loopback address of dst's family,
// and starts connecting it to dst.
func dialStart(dst netip.AddrPort) (*rawClient, error) {
	family, local := unix.AF_INET6, netip.AddrPortFrom(netip.IPv6Loopback(), 0)
	if dst.Addr().Is4() {
		family, local = unix.AF_INET, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	c, err := connectFD(fd, local, dst)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

// connectFD binds fd to local, learns its port, records the time and calls
// connect(2). It then hands fd to the runtime poller.
func connectFD(fd int, local, dst netip.AddrPort) (*rawClient, error) {
	if err := unix.Bind(fd, netaddr.Sockaddr(local)); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	c := &rawClient{Local: netip.AddrPortFrom(local.Addr(), netaddr.Port(sa))}
	c.Started = time.Now()
	if err := unix.Connect(fd, netaddr.Sockaddr(dst)); err != nil && err != unix.EINPROGRESS {
		return nil, os.NewSyscallError("connect", err)
	}
	c.f = os.NewFile(uintptr(fd), "client")
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, err
	}
	return c, nil
}

// errRefused is the error of a connect the server refused.
var errRefused = errors.New("connection refused")

// wait waits until the connect completes or fails, or deadline passes, and
// returns when the poller reported it. A refusal returns errRefused.
func (c *rawClient) wait(deadline time.Time) (time.Time, error) {
	if err := c.f.SetWriteDeadline(deadline); err != nil {
		return time.Time{}, err
	}
	var cerr error
	err := c.rc.Write(func(fd uintptr) bool {
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case soerr == int(unix.ECONNREFUSED):
			cerr = errRefused
		case soerr != 0:
			cerr = os.NewSyscallError("connect", syscall.Errno(soerr))
		default:
			if _, err := unix.Getpeername(int(fd)); err != nil {
				return false // still connecting
			}
		}
		return true
	})
	at := time.Now()
	if err != nil {
		return at, fmt.Errorf("connect %v: %w", c.Local, err)
	}
	return at, cerr
}

// readByte reads one byte, waiting until deadline.
func (c *rawClient) readByte(deadline time.Time) (byte, error) {
	if err := c.f.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := c.f.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// Close aborts the connection: SO_LINGER 0 makes close(2) send a RST
// rather than a FIN, so that neither end lingers in TIME_WAIT. Tens of
// thousands of connections in a minute would otherwise fill the ephemeral
// port range with TIME_WAIT sockets, and every bind to port 0 (each
// listener a pair opens) would slow down as it searches for a free port.
func (c *rawClient) Close() error {
	_ = c.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
	return c.f.Close()
}
