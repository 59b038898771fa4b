//go:build linux

package rawconn

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConnectFaults drives Connect through a scripted poller and scripted
// SO_ERROR and getpeername results.
func TestConnectFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connect   error   // connect(2)'s result
		soErrors  []int   // SO_ERROR after each wake-up
		peerErrs  []error // getpeername after each SO_ERROR of 0
		waits     []error
		wantWaits int
		want      error
	}{
		{name: "connected at once", connect: nil},
		{name: "already connected", connect: unix.EISCONN},
		{name: "in progress, then done", connect: unix.EINPROGRESS, soErrors: []int{0}, peerErrs: []error{nil}, waits: []error{nil}, wantWaits: 1},
		{name: "interrupted, then done", connect: unix.EINTR, soErrors: []int{0}, peerErrs: []error{nil}, waits: []error{nil}, wantWaits: 1},
		{name: "woken for nothing, then done", connect: unix.EINPROGRESS, soErrors: []int{0, 0}, peerErrs: []error{unix.ENOTCONN, nil},
			waits: []error{nil, nil}, wantWaits: 2},
		{name: "still in progress when woken", connect: unix.EINPROGRESS, soErrors: []int{int(unix.EALREADY), 0}, peerErrs: []error{nil},
			waits: []error{nil, nil}, wantWaits: 2},
		{name: "refused", connect: unix.EINPROGRESS, soErrors: []int{int(unix.ECONNREFUSED)}, waits: []error{nil}, wantWaits: 1,
			want: unix.ECONNREFUSED},
		{name: "refused at once", connect: unix.ECONNREFUSED, want: unix.ECONNREFUSED},
		{name: "deadline while connecting", connect: unix.EINPROGRESS, waits: []error{os.ErrDeadlineExceeded}, wantWaits: 1,
			want: os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldSO, oldPeer := getsockoptInt, getpeername
			defer func() { getsockoptInt, getpeername = oldSO, oldPeer }()
			so, peer := tc.soErrors, tc.peerErrs
			getsockoptInt = func(fd, level, opt int) (int, error) {
				if len(so) == 0 {
					t.Fatal("SO_ERROR read more often than scripted")
				}
				v := so[0]
				so = so[1:]
				return v, nil
			}
			getpeername = func(fd int) (unix.Sockaddr, error) {
				if len(peer) == 0 {
					t.Fatal("getpeername called more often than scripted")
				}
				err := peer[0]
				peer = peer[1:]
				return &unix.SockaddrInet4{}, err
			}
			c := &fakeConn{waits: tc.waits}
			connects := 0
			err := Connect(c, func(int) error { connects++; return tc.connect })
			if connects != 1 || c.waited != tc.wantWaits {
				t.Errorf("%d connects and %d waits, want 1 and %d", connects, c.waited, tc.wantWaits)
			}
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("Connect: %v, want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Connect: %v, want %v", err, tc.want)
			}
			if len(so) != 0 || len(peer) != 0 {
				t.Errorf("unused script: SO_ERROR %v, getpeername %v", so, peer)
			}
		})
	}
}

// TestConnectThroughThePoller connects a non-blocking TCP socket to a
// loopback listener, and to a closed port, for real.
func TestConnectThroughThePoller(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	connectTo := func(port int) error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "tcp")
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
		return Connect(rc, func(fd int) error { return unix.Connect(fd, sa) })
	}
	if err := connectTo(port); err != nil {
		t.Fatalf("connect to a listener: %v", err)
	}
	ln.Close()
	err = connectTo(port)
	var se *os.SyscallError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &se) || se.Syscall != "connect" {
		t.Fatalf("connect to a closed port: %v, want ECONNREFUSED named connect", err)
	}
}
