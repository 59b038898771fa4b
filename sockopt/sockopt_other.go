//go:build !linux

package sockopt

import (
	"syscall"
	"time"

	"golang.org/x/net/bpf"
)

// AttachFilter is not implemented on this GOOS.
func AttachFilter(c syscall.RawConn, prog []bpf.RawInstruction) error { return ErrNotImplemented }

// DetachFilter is not implemented on this GOOS.
func DetachFilter(c syscall.RawConn) error { return ErrNotImplemented }

// SetTimestampNS is not implemented on this GOOS.
func SetTimestampNS(c syscall.RawConn, on bool) error { return ErrNotImplemented }

// SetMark is not implemented on this GOOS.
func SetMark(c syscall.RawConn, mark uint32) error { return ErrNotImplemented }

// SetReceiveBuffer is not implemented on this GOOS.
func SetReceiveBuffer(c syscall.RawConn, bytes int) error { return ErrNotImplemented }

// SetLinger is not implemented on this GOOS; use (*net.TCPConn).SetLinger.
func SetLinger(c syscall.RawConn, d time.Duration) error { return ErrNotImplemented }
