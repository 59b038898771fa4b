//go:build unix

package sockopt

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func rawConn(t *testing.T) syscall.RawConn {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// TestErrorsKeepTheErrno injects a failure through the seam: the caller must
// still match the errno, and see the operation in the message.
func TestErrorsKeepTheErrno(t *testing.T) {
	old := setsockoptInt
	setsockoptInt = func(int, int, int, int) error { return unix.EPERM }
	defer func() { setsockoptInt = old }()
	rc := rawConn(t)
	for name, set := range map[string]func() error{
		"SO_REUSEADDR": func() error { return SetReuseAddr(rc, true) },
		"IPV6_V6ONLY":  func() error { return SetV6Only(rc, true) },
	} {
		err := set()
		var se *os.SyscallError
		if !errors.Is(err, unix.EPERM) || !errors.Is(err, os.ErrPermission) || !errors.As(err, &se) {
			t.Errorf("%s: error %v, want an *os.SyscallError matching EPERM", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the option", name, err)
		}
	}
}

// TestSetV6OnlySticks sets the option both ways on an unbound socket (the
// kernel refuses to change it after bind) and reads it back.
func TestSetV6OnlySticks(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	f := os.NewFile(uintptr(fd), "v6")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		if err := SetV6Only(rc, on); err != nil {
			t.Fatal(err)
		}
		var got int
		rc.Control(func(fd uintptr) { got, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) })
		if (got == 1) != on {
			t.Errorf("SetV6Only(%v): option reads %d", on, got)
		}
	}
}
