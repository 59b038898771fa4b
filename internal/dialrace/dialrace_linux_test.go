package dialrace

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// silent is an address whose SYNs go unanswered until the test ends: a
// socket listening with a backlog of 0 whose one place is taken, so that
// the kernel drops further SYNs (the client retransmits).
func silent(t *testing.T) Target {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(os.NewSyscallError("socket", err))
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(os.NewSyscallError("bind", err))
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(os.NewSyscallError("listen", err))
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(os.NewSyscallError("getsockname", err))
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second) // takes the one place
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Wait until the queue is full: another dial then goes unanswered.
	probe, err := net.DialTimeout("tcp4", addr, 200*time.Millisecond)
	if err == nil {
		probe.Close()
		t.Fatalf("%s still accepts a second connection with a backlog of 0", addr)
	}
	return Target{"tcp4", addr}
}

// TestStagger checks that a second family is dialled the stagger after an
// unanswered first, and that the first is then cancelled.
func TestStagger(t *testing.T) {
	const stagger = 150 * time.Millisecond
	first, second := silent(t), listening(t)
	conn, winner, attempts, err := Race(context.Background(), stagger, first, second)
	if err != nil || winner != 1 {
		t.Fatalf("winner %d, %v; want the second", winner, err)
	}
	conn.Close()
	if gap := attempts[1].Start.Sub(attempts[0].Start); gap < stagger || gap > stagger+time.Second {
		t.Errorf("the second attempt started %v after the first, want %v (+ up to 1 s)", gap, stagger)
	}
	if !errors.Is(attempts[0].Err, context.Canceled) || attempts[0].Done.Before(attempts[1].Done) {
		t.Errorf("the unanswered first attempt: %+v; want cancelled once the second won", attempts[0])
	}
}
