//go:build !unix

package sockopt

import "syscall"

// SetV6Only is not implemented on this GOOS; the net package sets
// IPV6_V6ONLY itself for "tcp6" listeners.
func SetV6Only(c syscall.RawConn, on bool) error { return ErrNotImplemented }

// SetReuseAddr is not implemented on this GOOS.
func SetReuseAddr(c syscall.RawConn, on bool) error { return ErrNotImplemented }
