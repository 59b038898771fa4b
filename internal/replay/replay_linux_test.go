package replay

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/testenv"
)

func TestToKeepsTheInterfaceForIPv6(t *testing.T) {
	if sa, ok := To(netip.MustParseAddr("127.0.0.1"), 7).(*unix.SockaddrInet4); !ok || sa.Addr != [4]byte{127, 0, 0, 1} || sa.Port != 0 {
		t.Errorf("To(127.0.0.1) = %#v", sa)
	}
	if sa, ok := To(netip.IPv6Loopback(), 1).(*unix.SockaddrInet6); !ok || sa.Addr != netip.IPv6Loopback().As16() || sa.ZoneId != 1 {
		t.Errorf("To(::1, 1) = %#v", sa)
	}
}

func TestSocketIsMarked(t *testing.T) {
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		fd, err := Socket(family)
		testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
		mark, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK)
		unix.Close(fd)
		if err != nil || mark != Mark {
			t.Errorf("family %d: SO_MARK = %#x, %v; want %#x", family, mark, err, Mark)
		}
	}
	if n := len(HoldFilter()); n != 7 {
		t.Errorf("HoldFilter has %d instructions, want 7", n)
	}
}

// openConn opens a Conn of IPv4, or skips without CAP_NET_RAW.
func openConn(t testing.TB) *Conn {
	t.Helper()
	c, err := Open(unix.AF_INET)
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	t.Cleanup(func() { c.Close() })
	return c
}

// rstTo is a packet a Conn may send on loopback without effect: a RST from
// and to a port where nothing listens, which the kernel drops.
func rstTo(t testing.TB) ([]byte, unix.Sockaddr) {
	port := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(testenv.FreePort(t)))
	return RST(port, port, 1), To(port.Addr(), 1)
}

// TestSendFaults drives Send through the sendto seam and the runtime poller:
// EINTR is retried at once; EAGAIN waits in the poller until the socket is
// writable again (a packet sent, and freed, wakes it), or until the write
// deadline; a hard error comes back named sendto; a Send on a closed Conn,
// or one waiting when it is closed, fails with os.ErrClosed.
func TestSendFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		errs       []error // the seam's results before it sends
		block      bool    // EAGAIN for ever, without a wake-up
		deadline   time.Duration
		close      bool // Close the Conn once the seam was called (before the Send: no call)
		closeEarly bool
		wantCalls  int // at least; at most 3 more (wake-ups for nothing)
		want       error
	}{
		{name: "sent at once", wantCalls: 1},
		{name: "interrupted twice, then sent", errs: []error{unix.EINTR, unix.EINTR}, wantCalls: 3},
		{name: "would block, then writable", errs: []error{unix.EAGAIN}, wantCalls: 2},
		{name: "interrupted, would block, then writable", errs: []error{unix.EINTR, unix.EAGAIN, unix.EINTR}, wantCalls: 4},
		{name: "a hard error", errs: []error{unix.EPERM}, wantCalls: 1, want: unix.EPERM},
		{name: "would block past the deadline", block: true, deadline: 50 * time.Millisecond, wantCalls: 1, want: os.ErrDeadlineExceeded},
		{name: "closed while waiting", block: true, close: true, wantCalls: 1, want: os.ErrClosed},
		{name: "closed before", closeEarly: true, wantCalls: 0, want: os.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openConn(t)
			b, to := rstTo(t)
			calls := 0
			called := make(chan struct{})
			old := sendto
			sendto = func(fd int, p []byte, flags int, to unix.Sockaddr) error {
				if calls++; calls == 1 {
					close(called)
				}
				switch {
				case tc.block:
					return unix.EAGAIN
				case calls > len(tc.errs):
					return old(fd, p, flags, to)
				case tc.errs[calls-1] == unix.EAGAIN:
					// The socket is writable again once a packet it
					// sent is freed: this one, on loopback at once.
					if err := old(fd, p, flags, to); err != nil {
						t.Errorf("the packet that makes the socket writable: %v", err)
					}
				}
				return tc.errs[calls-1]
			}
			t.Cleanup(func() { sendto = old })
			deadline := tc.deadline
			if deadline == 0 {
				deadline = 10 * time.Second // fail, not hang, if no wake-up comes
			}
			if err := c.f.SetWriteDeadline(time.Now().Add(deadline)); err != nil {
				t.Fatal(err)
			}
			if tc.closeEarly {
				c.Close()
			}
			if tc.close {
				go func() { <-called; c.Close() }()
			}
			err := c.Send(b, to)
			if calls < tc.wantCalls || calls > tc.wantCalls+3 {
				t.Errorf("sendto called %d times, want %d", calls, tc.wantCalls)
			}
			var se *os.SyscallError
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("Send: %v, want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Send: %v, want %v", err, tc.want)
			case tc.want == unix.EPERM && (!errors.As(err, &se) || se.Syscall != "sendto"):
				t.Errorf("Send: %#v, want an *os.SyscallError named sendto", err)
			}
		})
	}
}

// TestSendAllocatesNothing: a Send, interrupted or not, allocates nothing.
func TestSendAllocatesNothing(t *testing.T) {
	if raceDetector {
		testenv.SkipWithoutFeature(t, "a sync.Pool that keeps what is Put (the race detector drops some)", nil)
	}
	c := openConn(t)
	b, to := rstTo(t)
	old := sendto
	t.Cleanup(func() { sendto = old })
	for _, tc := range []struct {
		name   string
		sendto func(int, []byte, int, unix.Sockaddr) error
	}{
		{"sendto", old},
		{"interrupted", func() func(int, []byte, int, unix.Sockaddr) error {
			n := 0
			return func(fd int, p []byte, flags int, to unix.Sockaddr) error {
				if n++; n%2 == 1 {
					return unix.EINTR
				}
				return old(fd, p, flags, to)
			}
		}()},
	} {
		sendto = tc.sendto
		if allocs := testing.AllocsPerRun(1000, func() {
			if err := c.Send(b, to); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%s: %v allocations a Send, want 0", tc.name, allocs)
		}
	}
}

// BenchmarkSend is one packet sent on loopback (a RST the kernel drops).
func BenchmarkSend(b *testing.B) {
	c := openConn(b)
	pkt, to := rstTo(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(pkt, to); err != nil {
			b.Fatal(err)
		}
	}
}
