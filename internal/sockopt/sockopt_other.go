//go:build !linux

package sockopt

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"golang.org/x/net/bpf"
)

// errUnsupported is returned by helpers for options that this GOOS does not
// provide; it wraps errors.ErrUnsupported.
var errUnsupported = fmt.Errorf("sockopt: not provided on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// AttachFilter is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported.
func AttachFilter(c syscall.RawConn, prog []bpf.RawInstruction) error { return errUnsupported }

// DetachFilter is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported.
func DetachFilter(c syscall.RawConn) error { return errUnsupported }

// SetTimestampNS is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported.
func SetTimestampNS(c syscall.RawConn, on bool) error { return errUnsupported }

// SetMark is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported.
func SetMark(c syscall.RawConn, mark uint32) error { return errUnsupported }

// SetReceiveBuffer is not provided on this GOOS: it returns an error
// wrapping errors.ErrUnsupported.
func SetReceiveBuffer(c syscall.RawConn, bytes int) error { return errUnsupported }
