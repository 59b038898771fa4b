//go:build unix

package listener

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/internal/sockopt"
)

// Seams for fault injection in tests.
var (
	listenFunc = unix.Listen
	bindFunc   = unix.Bind
)

// socketFile opens a TCP socket of local's family as an *os.File, with
// SO_REUSEADDR, and IPV6_V6ONLY unless dual.
func socketFile(local netip.AddrPort, dual bool) (*os.File, error) {
	family := unix.AF_INET
	if local.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := streamSocket(family)
	if err != nil {
		return nil, fmt.Errorf("listener: %w", os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), "tcp:"+local.String())
	rc, err := f.SyscallConn()
	if err == nil {
		err = sockopt.SetReuseAddr(rc, true)
	}
	if err == nil && family == unix.AF_INET6 {
		err = sockopt.SetV6Only(rc, !dual)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("listener: %w", err)
	}
	return f, nil
}

// bindRaw binds the socket behind rc to local and returns the address it got
// (the port, when local's is 0).
func bindRaw(rc syscall.RawConn, local netip.AddrPort) (netip.AddrPort, error) {
	var (
		got  netip.AddrPort
		serr error
	)
	err := rc.Control(func(fd uintptr) {
		if serr = bindFunc(int(fd), netaddr.Sockaddr(local)); serr != nil {
			serr = os.NewSyscallError("bind", serr)
			return
		}
		var sa unix.Sockaddr
		if sa, serr = unix.Getsockname(int(fd)); serr != nil {
			serr = os.NewSyscallError("getsockname", serr)
			return
		}
		got = netip.AddrPortFrom(local.Addr(), netaddr.Port(sa))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return local, fmt.Errorf("listener: bind %v: %w", local, err)
	}
	return got, nil
}

// listenFile calls listen(2) on f and returns it as a net.Listener.
func listenFile(f *os.File, rc syscall.RawConn, backlog int) (net.Listener, error) {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = listenFunc(int(fd), backlog) }); err != nil {
		return nil, fmt.Errorf("listener: listen: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("listener: %w", os.NewSyscallError("listen", serr))
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	return ln, nil
}

// bound is a socket bound but not yet listening (strategy DelayedListen).
type bound struct{ f *os.File }

// bindOnly binds a socket to local without listening on it: a SYN to it is
// refused until listen is called.
func bindOnly(local netip.AddrPort, dual bool) (bound, netip.AddrPort, error) {
	f, err := socketFile(local, dual)
	if err != nil {
		return bound{}, local, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		local, err = bindRaw(rc, local)
	}
	if err != nil {
		f.Close()
		return bound{}, local, err
	}
	return bound{f: f}, local, nil
}

// listen starts listening on the bound socket.
func (b *bound) listen() (net.Listener, error) {
	rc, err := b.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	ln, err := listenFile(b.f, rc, unix.SOMAXCONN)
	b.close()
	return ln, err
}

func (b *bound) close() error {
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}
