package listener

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/internal/rawconn"
)

// plugSocket opens the connection that fills a backlog-0 listener's accept
// queue, bound so that its address is known before its SYN is sent.
func plugSocket(local netip.AddrPort) (*os.File, netip.AddrPort, error) {
	from := netip.AddrPortFrom(reachable(local).Addr(), 0)
	f, err := socketFile(from, false)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	rc, err := f.SyscallConn()
	var got netip.AddrPort
	if err == nil {
		got, err = bindRaw(rc, from)
	}
	if err != nil {
		f.Close()
		return nil, netip.AddrPort{}, err
	}
	return f, got, nil
}

// reachable is local, or the loopback address of its family if local is a
// wildcard: where this host can connect to the listener.
func reachable(local netip.AddrPort) netip.AddrPort {
	switch a := local.Addr(); {
	case !a.IsUnspecified():
		return local
	case a.Is4():
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), local.Port())
	default:
		return netip.AddrPortFrom(netip.IPv6Loopback(), local.Port())
	}
}

// plugQueue connects the plug to the listener. With backlog 0 the accept
// queue is then full, and Linux drops every further SYN without an answer
// (tcp_abort_on_overflow is 0 by default) until the backlog is raised. The
// connect is non-blocking and waits in the runtime poller (rawconn), with
// the rules net (and mdlayher/socket) follow: EINPROGRESS and EALREADY mean
// the connect goes on (EINTR too: rawconn calls again, and finds it going
// on); once writable, SO_ERROR says how it ended, and getpeername tells a
// real completion from a spurious wake-up.
func plugQueue(plug *os.File, local netip.AddrPort) error {
	rc, err := plug.SyscallConn()
	if err != nil {
		return err
	}
	started := false
	err = rawconn.Write(rc, "connect", func(fd int) error {
		if !started {
			started = true
			switch err := connectFunc(fd, netaddr.Sockaddr(reachable(local))); err {
			case unix.EINPROGRESS, unix.EALREADY:
				return unix.EAGAIN // wait until writable
			case unix.EISCONN:
				return nil
			default:
				return err
			}
		}
		switch err := socketError(fd); err {
		case unix.EINPROGRESS, unix.EALREADY:
			return unix.EAGAIN
		case unix.EISCONN:
			return nil
		case nil:
			if _, err := unix.Getpeername(fd); err != nil {
				return unix.EAGAIN // woken before the connect completed: wait again
			}
			return nil
		default:
			return err
		}
	})
	if err != nil {
		return fmt.Errorf("listener: fill the accept queue: %w", err)
	}
	return nil
}

// connectFunc is the seam through which the plug connects; tests replace it
// to inject errors.
var connectFunc = unix.Connect

// socketError returns the pending error of a socket (SO_ERROR), nil if none.
func socketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || v == 0 {
		return err
	}
	return unix.Errno(v)
}

func (s *sysState) closePlug() {
	if s.plug != nil {
		s.plug.Close()
		s.plug = nil
	}
}
