package capture

import (
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openOrSkip opens a capture socket on every interface, or skips the test
// when the process lacks CAP_NET_RAW.
func openOrSkip(t *testing.T, cfg Config) *Socket {
	t.Helper()
	s, err := Open(cfg)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("capture needs CAP_NET_RAW: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSocketSeesOneSYNAndOneSYNACK(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			s := openOrSkip(t, Config{})
			ln, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.network, err)
			}
			defer ln.Close()
			lport := ln.Addr().(*net.TCPAddr).AddrPort().Port()
			before := time.Now()
			c, err := net.Dial(tc.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cport := c.LocalAddr().(*net.TCPAddr).AddrPort().Port()

			var syns, synacks, incoming int
			var sent, received time.Time
			s.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				if syns == 1 && synacks == 2 {
					// Both seen: a short extra window catches duplicates.
					s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				}
				p, err := s.ReadPacket()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case p.IsSYN() && p.Dst.Port() == lport && p.Src.Port() == cport:
					syns++
					if p.Outgoing {
						t.Errorf("SYN copy marked outgoing: %+v", p)
					}
					if d := p.Time.Sub(before); d < 0 || d > time.Second {
						t.Errorf("SYN kernel time %v is %v from the dial", p.Time, d)
					}
				case p.IsSYNACK() && p.Src.Port() == lport && p.Dst.Port() == cport:
					synacks++
					if !p.Loopback {
						t.Errorf("SYN-ACK on lo not marked loopback: %+v", p)
					}
					if p.Outgoing {
						sent = p.Time
					} else {
						incoming++
						received = p.Time
					}
				}
			}
			if syns != 1 || synacks != 2 || incoming != 1 {
				t.Errorf("saw %d SYNs and %d SYN-ACKs (%d received), want 1 and 2 (the sent and the received copy)", syns, synacks, incoming)
			}
			if received.Before(sent) {
				t.Errorf("SYN-ACK received at %v, before it was sent at %v", received, sent)
			}
		})
	}
}

func TestCloseWakesReader(t *testing.T) {
	s := openOrSkip(t, Config{Ifindex: 1})
	done := make(chan error, 1)
	go func() {
		for { // other loopback traffic may come first
			if _, err := s.ReadPacket(); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := s.Sync(time.Now().Add(5 * time.Second)); err != nil { // the reader is now in ReadPacket
		t.Fatal(err)
	}
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("ReadPacket after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake ReadPacket")
	}
}

func TestOpenMissingInterface(t *testing.T) {
	_, err := Open(Config{Ifindex: 1 << 30})
	if errors.Is(err, os.ErrPermission) {
		t.Skip("capture needs CAP_NET_RAW")
	}
	if err == nil {
		t.Fatal("Open on a missing interface succeeded")
	}
	t.Logf("error: %v", err)
}

// dialLoopback makes one connection on loopback and returns the listener's
// and the client's port.
func dialLoopback(t *testing.T) (lport, cport uint16) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort().Port(), c.LocalAddr().(*net.TCPAddr).AddrPort().Port()
}

// TestSyncWaitsForWhatWasQueued has a slow reader handle packets, and checks
// that Sync returns only once the handshake made before it was handled, and
// that it gives up at its deadline when nobody reads.
func TestSyncWaitsForWhatWasQueued(t *testing.T) {
	s := openOrSkip(t, Config{Ifindex: 1})
	if err := s.Sync(time.Now().Add(20 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Sync with no reader: %v, want os.ErrDeadlineExceeded", err)
	}
	var (
		mu      sync.Mutex
		handled = map[uint16]int{} // client port -> segments handled
	)
	go func() {
		for {
			p, err := s.ReadPacket()
			if err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // a slow handler
			mu.Lock()
			handled[p.Src.Port()]++
			handled[p.Dst.Port()]++
			mu.Unlock()
		}
	}()
	_, cport := dialLoopback(t)
	if err := s.Sync(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := handled[cport]
	mu.Unlock()
	if n != 3 {
		t.Errorf("after Sync, %d segments of the connection were handled, want 3 (SYN, SYN-ACK sent and received)", n)
	}
}

// TestSyncKeepsTheCallersDeadline checks that Sync's wake-up does not cut a
// reader's own deadline short, nor lift it.
func TestSyncKeepsTheCallersDeadline(t *testing.T) {
	s := openOrSkip(t, Config{Ifindex: 1})
	deadline := time.Now().Add(300 * time.Millisecond)
	s.SetReadDeadline(deadline)
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := s.ReadPacket(); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := s.Sync(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().Before(deadline) {
			t.Fatalf("ReadPacket returned %v before its deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader's deadline was lost")
	}
}

// TestConcurrentSyncsDoNotFailTheReader runs many Syncs at once against a
// reader with no deadline of its own: none of their wake-ups may reach it as
// a timeout (two overlapping wake-ups once did, and the engine took the
// capture for failed).
func TestConcurrentSyncsDoNotFailTheReader(t *testing.T) {
	s := openOrSkip(t, Config{Ifindex: 1})
	readerErr := make(chan error, 1)
	go func() {
		for {
			if _, err := s.ReadPacket(); err != nil {
				readerErr <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				if err := s.Sync(time.Now().Add(5 * time.Second)); err != nil {
					t.Errorf("Sync: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-readerErr:
		t.Fatalf("ReadPacket failed during the Syncs: %v", err)
	default:
	}
	s.Close()
	if err := <-readerErr; !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadPacket after Close: %v, want os.ErrClosed", err)
	}
}

// TestReadPacketRetriesTransientErrors injects recvmsg errors: transient
// ones are retried and the packet still comes back; a fatal one is returned.
func TestReadPacketRetriesTransientErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		errs   []error
		wantOK bool
	}{
		{"EINTR", []error{unix.EINTR}, true},
		{"ENOBUFS twice", []error{unix.ENOBUFS, unix.ENOBUFS}, true},
		{"ENOMEM", []error{unix.ENOMEM}, true},
		{"EBADF", []error{unix.EBADF}, false},
		{"endless ENOBUFS", slices.Repeat([]error{unix.ENOBUFS}, maxTransient+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openOrSkip(t, Config{Ifindex: 1})
			var calls int
			old := recvmsgFunc
			recvmsgFunc = func(fd int, p, oob []byte, flags int) (int, int, int, unix.Sockaddr, error) {
				if calls < len(tc.errs) {
					calls++
					return 0, 0, 0, nil, tc.errs[calls-1]
				}
				return old(fd, p, oob, flags)
			}
			defer func() { recvmsgFunc = old }()
			dialLoopback(t)
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := s.ReadPacket()
			last := tc.errs[len(tc.errs)-1]
			switch {
			case calls != len(tc.errs):
				t.Errorf("recvmsg failed %d times, want %d", calls, len(tc.errs))
			case tc.wantOK && err != nil:
				t.Errorf("ReadPacket after %v: %v, want the packet", tc.errs, err)
			case !tc.wantOK && !errors.Is(err, last):
				t.Errorf("ReadPacket: %v, want %v", err, last)
			}
		})
	}
}

// TestOpenSyscallFaults makes socket(2) and bind(2) fail: Open returns the
// error, wrapped so that errors.Is still sees it, and leaves nothing open.
func TestOpenSyscallFaults(t *testing.T) {
	oldSocket, oldBind := socketFunc, bindFunc
	defer func() { socketFunc, bindFunc = oldSocket, oldBind }()
	socketFunc = func(int, int, int) (int, error) { return -1, unix.EPERM }
	if _, err := Open(Config{}); !errors.Is(err, os.ErrPermission) {
		t.Errorf("Open with socket(2) refused: %v, want a permission error", err)
	}
	socketFunc = oldSocket
	bindFunc = func(int, unix.Sockaddr) error { return unix.ENODEV }
	before := countFDs(t)
	_, err := Open(Config{Ifindex: 1})
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("capture needs CAP_NET_RAW: %v", err)
	}
	if !errors.Is(err, unix.ENODEV) {
		t.Errorf("Open with bind(2) failing: %v, want ENODEV", err)
	}
	if after := countFDs(t); after > before {
		t.Errorf("%d descriptors open after the failed Open, %d before", after, before)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
