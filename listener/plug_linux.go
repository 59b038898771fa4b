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
// connect is non-blocking and waits in the runtime poller, by the rules net
// (and mdlayher/socket) follow, written once in rawconn.Connect.
func plugQueue(plug *os.File, local netip.AddrPort) error {
	rc, err := plug.SyscallConn()
	if err != nil {
		return err
	}
	sa := netaddr.Sockaddr(reachable(local))
	if err := rawconn.Connect(rc, func(fd int) error { return connectFunc(fd, sa) }); err != nil {
		return fmt.Errorf("listener: fill the accept queue: %w", err)
	}
	return nil
}

// connectFunc is the seam through which the plug connects; tests replace it
// to inject errors.
var connectFunc = unix.Connect

func (s *sysState) closePlug() {
	if s.plug != nil {
		s.plug.Close()
		s.plug = nil
	}
}
