//go:build unix

package sockopt

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// setsockoptInt is the seam through which every integer option is set; tests
// replace it to inject failures.
var setsockoptInt = unix.SetsockoptInt

func setInt(c syscall.RawConn, op string, level, opt, v int) error {
	return control(c, op, func(fd int) error {
		return os.NewSyscallError("setsockopt", setsockoptInt(fd, level, opt, v))
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetV6Only sets IPV6_V6ONLY, so that an IPv6 socket bound to the wildcard
// address does not also take IPv4 connections.
func SetV6Only(c syscall.RawConn, on bool) error {
	return setInt(c, "set IPV6_V6ONLY", unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(on))
}

// SetReuseAddr sets SO_REUSEADDR, so that a port in TIME_WAIT can be bound again.
func SetReuseAddr(c syscall.RawConn, on bool) error {
	return setInt(c, "set SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, boolInt(on))
}
