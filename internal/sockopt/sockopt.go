// Package sockopt provides small typed helpers over setsockopt(2) and
// getsockopt(2) for the socket options the rest of the toolkit needs:
// classic BPF filters that hold a listener's SYNs, IPV6_V6ONLY, address
// reuse, kernel receive timestamps, packet marks and receive buffers.
//
// Every helper works on a syscall.RawConn, which *net.TCPListener,
// *net.TCPConn and *os.File all provide, so the descriptor stays owned by
// the runtime poller. Errors wrap an *os.SyscallError, so errors.Is(err,
// unix.EPERM) keeps working for the caller.
package sockopt

import (
	"fmt"
	"syscall"
)

// control runs fn on the descriptor behind c and wraps both the Control
// failure and fn's error with the operation name op.
func control(c syscall.RawConn, op string, fn func(fd int) error) error {
	var ferr error
	if err := c.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return fmt.Errorf("sockopt: %s: %w", op, err)
	}
	if ferr != nil {
		return fmt.Errorf("sockopt: %s: %w", op, ferr)
	}
	return nil
}
