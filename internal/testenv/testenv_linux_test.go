package testenv

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSYNSent holds a handshake (a listener with a backlog of 0 takes one
// connection, then drops SYNs) and finds the second client in SYN_SENT to
// its port, and no client to a port nobody dialed.
func TestSYNSent(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	if SYNSent(t, port) {
		t.Fatal("SYN_SENT to a port nobody has dialed")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	first, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		if c, err := (&net.Dialer{}).DialContext(ctx, "tcp4", addr); err == nil {
			c.Close()
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); !SYNSent(t, port); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second client never showed SYN_SENT to a full accept queue")
		}
	}
	if other := port ^ 1; SYNSent(t, other) {
		t.Errorf("SYN_SENT to port %d, which nobody dialed", other)
	}
}
