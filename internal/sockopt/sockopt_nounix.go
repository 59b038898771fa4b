//go:build !unix

package sockopt

import "syscall"

// SetV6Only is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported; the net package sets
// IPV6_V6ONLY itself for "tcp6" listeners.
func SetV6Only(c syscall.RawConn, on bool) error { return errUnsupported }

// SetReuseAddr is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported.
func SetReuseAddr(c syscall.RawConn, on bool) error { return errUnsupported }
