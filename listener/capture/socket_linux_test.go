package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/netnstest"
	"github.com/synhold/synhold/internal/testenv"
)

// openOrSkip opens a capture socket with cfg, closed with the test, or
// skips the test when the process lacks CAP_NET_RAW.
func openOrSkip(t *testing.T, cfg Config) *Socket {
	t.Helper()
	s, err := Open(cfg)
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	t.Cleanup(func() { s.Close() })
	return s
}

// listenLoopback listens on network's ("tcp4" or "tcp6") loopback address,
// on a port of the kernel's choosing, until the test ends; a tcp6 test skips
// where lo has no ::1.
func listenLoopback(t *testing.T, network string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network])
	if network == "tcp6" {
		testenv.SkipWithoutIPv6(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestSocketSeesOneSYNAndOneSYNACK(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			s := openOrSkip(t, Config{})
			ln := listenLoopback(t, network)
			lport := ln.Addr().(*net.TCPAddr).AddrPort().Port()
			before := time.Now()
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cport := c.LocalAddr().(*net.TCPAddr).AddrPort().Port()

			var syns, synacks, incoming int
			var sent, received time.Time
			s.SetReadDeadline(time.Now().Add(3 * time.Second))
			for extra := false; ; {
				if syns == 1 && synacks == 2 && !extra {
					// Both seen: a short extra window catches duplicates. Set
					// once: moved on at each packet, other tests' loopback
					// traffic kept it open for over a minute.
					extra = true
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
		testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
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
	ln := listenLoopback(t, "tcp4")
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
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
	// Only this connection's handshake reaches the slow handler: other
	// tests' loopback traffic, on a busy machine, could keep it behind for
	// longer than Sync waits (10 s were seen).
	ln := listenLoopback(t, "tcp4")
	if err := s.SetPorts([]uint16{ln.Addr().(*net.TCPAddr).AddrPort().Port()}); err != nil {
		t.Fatal(err)
	}
	_, cport := dialTo(t, ln)
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
		{"EINTR five times", slices.Repeat([]error{unix.EINTR}, 5), true},
		{"EINTR then ENOBUFS", []error{unix.EINTR, unix.ENOBUFS}, true},
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
			var se *os.SyscallError
			if !tc.wantOK && (!errors.As(err, &se) || se.Syscall != "recvmsg") {
				t.Errorf("ReadPacket: %#v does not name recvmsg", err)
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
	before := testenv.OpenFDs(t)
	_, err := Open(Config{Ifindex: 1})
	if errors.Is(err, os.ErrPermission) {
		testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	}
	if !errors.Is(err, unix.ENODEV) {
		t.Errorf("Open with bind(2) failing: %v, want ENODEV", err)
	}
	if after := testenv.OpenFDs(t); after > before {
		t.Errorf("%d descriptors open after the failed Open, %d before", after, before)
	}
}

// collect reads s in a goroutine until it is closed, and returns a function
// that returns a copy of the segments read so far.
func collect(t *testing.T, s *Socket) func() []Packet {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []Packet
	)
	go func() {
		for {
			p, err := s.ReadPacket()
			if err != nil {
				return
			}
			p.IP = nil
			mu.Lock()
			seen = append(seen, p)
			mu.Unlock()
		}
	}()
	return func() []Packet {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// waitFor reads s until it returns a packet for which match is true, and
// fails the test after 5 s.
func waitFor(t *testing.T, s *Socket, what string, match func(Packet) bool) {
	t.Helper()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		p, err := s.ReadPacket()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(p) {
			return
		}
	}
}

// TestSkipIfindexDropsInTheFilter opens a socket on every interface that
// skips the loopback device, in a namespace with a veth pair, and makes one
// connection over each: the socket sees the SYN that came over the veth, and
// nothing at all of the loopback one, although a socket bound to lo saw it
// (and the kernel hands a packet to sockets on every interface before those
// on its own).
func TestSkipIfindexDropsInTheFilter(t *testing.T) {
	pair := netnstest.New(t)
	var all, lo *Socket
	var ln net.Listener
	err := pair.Server.Do(func() (err error) {
		if all, err = Open(Config{SkipIfindex: 1}); err != nil {
			return err
		}
		if lo, err = Open(Config{Ifindex: 1}); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", "0.0.0.0:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { all.Close(); lo.Close(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	seen := collect(t, all)

	dial := func(ns netnstest.NS, to netip.Addr) (client netip.AddrPort) {
		t.Helper()
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(to, port).String(), 5*time.Second)
			if err != nil {
				return err
			}
			client = c.LocalAddr().(*net.TCPAddr).AddrPort()
			return c.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
		return client
	}
	overVeth := dial(pair.Client, pair.Server.Addr4)
	overLo := dial(pair.Server, netip.MustParseAddr("127.0.0.1"))
	waitFor(t, lo, "the loopback SYN on lo", func(p Packet) bool { return p.IsSYN() && p.Src.Port() == overLo.Port() })
	if err := all.Sync(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var veth int
	for _, p := range seen() {
		switch {
		case p.Ifindex == 1:
			t.Errorf("a loopback packet reached the socket that skips lo: %v (ifindex %d, outgoing %t)", p.Segment, p.Ifindex, p.Outgoing)
		case p.IsSYN() && p.Src.Port() == overVeth.Port():
			veth++
		}
	}
	if veth != 1 {
		t.Errorf("the socket on every interface saw %d SYNs of the connection over the veth, want 1: %v", veth, seen())
	}
}

// TestIgnoreMarkDropsInTheFilter makes two connections on loopback, one
// from a socket with SO_MARK set: a capture socket ignoring that mark sees
// only the other, one ignoring no mark sees both.
func TestIgnoreMarkDropsInTheFilter(t *testing.T) {
	const mark = 0x5e1d
	plain := openOrSkip(t, Config{Ifindex: 1})
	ignoring := openOrSkip(t, Config{Ifindex: 1, IgnoreMark: mark})
	seen := collect(t, ignoring)
	ln := listenLoopback(t, "tcp4")
	dial := func(m int) uint16 {
		t.Helper()
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, m) }); err != nil {
				return err
			}
			return serr
		}}
		c, err := d.Dial("tcp4", ln.Addr().String())
		testenv.SkipWithoutPrivilege(t, err, "CAP_NET_ADMIN")
		defer c.Close()
		return c.LocalAddr().(*net.TCPAddr).AddrPort().Port()
	}
	marked, unmarked := dial(mark), dial(0)
	for _, port := range []uint16{marked, unmarked} {
		waitFor(t, plain, fmt.Sprintf("the SYN from port %d on the socket ignoring no mark", port),
			func(p Packet) bool { return p.IsSYN() && p.Src.Port() == port })
	}
	if err := ignoring.Sync(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []uint16
	for _, p := range seen() {
		if p.IsSYN() && (p.Src.Port() == marked || p.Src.Port() == unmarked) {
			got = append(got, p.Src.Port())
		}
	}
	if !slices.Equal(got, []uint16{unmarked}) {
		t.Errorf("the socket ignoring mark %#x saw SYNs from ports %v, want only the unmarked %d (marked: %d)", mark, got, unmarked, marked)
	}
}

func TestOpenRejectsContradictoryConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Ifindex: 1, SkipIfindex: 1},
		{Ifindex: 2, SkipIfindex: 1},
		{SkipIfindex: -1},
		{Ifindex: -1},
	} {
		s, err := Open(cfg)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", cfg)
		}
	}
}

// TestEachSocketStampsWhenHandedThePacket pins down what the SYN times of
// this package mean, beside another observer such as "tcpdump -i lo": the
// kernel stamps a TCP segment received on loopback for each packet socket
// when it hands the segment to that socket (the segment carries the
// sender's departure time, not a receive time), and it hands it to the
// sockets of a device newest first. A socket opened after tcpdump therefore
// stamps every SYN before tcpdump does, by the time the kernel spends on
// the sockets in between (1-3 µs here; on a loaded VM now and then 1-2 ms,
// other processes' packet sockets on lo included): its time is the nearer
// to the SYN's arrival, and tcpdump's the later one.
func TestEachSocketStampsWhenHandedThePacket(t *testing.T) {
	older := openOrSkip(t, Config{Ifindex: 1})
	newer := openOrSkip(t, Config{Ifindex: 1})
	ln := listenLoopback(t, "tcp4")
	lport := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	const conns = 20
	var ports []uint16
	for range conns {
		_, cport := dialTo(t, ln)
		ports = append(ports, cport)
	}
	synTimes := func(s *Socket) map[uint16]time.Time {
		got := map[uint16]time.Time{}
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		for len(got) < conns {
			p, err := s.ReadPacket()
			if err != nil {
				t.Fatalf("%d of %d SYNs read: %v", len(got), conns, err)
			}
			if p.IsSYN() && p.Dst.Port() == lport {
				got[p.Src.Port()] = p.Time
			}
		}
		return got
	}
	o, n := synTimes(older), synTimes(newer)
	var same int
	for _, port := range ports {
		switch d := o[port].Sub(n[port]); {
		case d < 0:
			t.Errorf("SYN from port %d: the newer socket stamped it %v after the older one; the kernel hands it to the newer first", port, -d)
		case d == 0:
			same++
		}
	}
	if same == conns {
		t.Errorf("both sockets stamped all %d SYNs alike: the kernel stamped them once on receipt, and the capture's time agrees with any observer's", conns)
	}
}

// dialTo makes one connection to ln and returns the listener's and the
// client's port.
func dialTo(t *testing.T, ln net.Listener) (lport, cport uint16) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort().Port(), c.LocalAddr().(*net.TCPAddr).AddrPort().Port()
}

// TestSetPortsKeepsOnlyThosePorts narrows a socket on lo to one listener's
// port: it sees that listener's SYN and SYN-ACKs and nothing of another's,
// which an older socket on lo did see (the kernel hands a packet to the
// newer socket first, so it had been judged). KeepNone hides both, and a
// port set after it is seen again. With the ports cleared, or too many to
// filter, it sees every port again.
func TestSetPortsKeepsOnlyThosePorts(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) { testSetPorts(t, network) })
	}
}

func testSetPorts(t *testing.T, network string) {
	older := openOrSkip(t, Config{Ifindex: 1})
	s := openOrSkip(t, Config{Ifindex: 1})
	seen := collect(t, s)
	kept, other := listenLoopback(t, network), listenLoopback(t, network)
	keptPort := kept.Addr().(*net.TCPAddr).AddrPort().Port()
	// count returns how many segments s handed over from or to client port.
	count := func(cport uint16) (n int) {
		for _, p := range seen() {
			if p.Src.Port() == cport || p.Dst.Port() == cport {
				n++
			}
		}
		return n
	}
	// dialBoth dials both listeners and waits until the older socket saw
	// both SYNs and s handed over what it kept.
	dialBoth := func() (k, o uint16) {
		t.Helper()
		_, k = dialTo(t, kept)
		_, o = dialTo(t, other)
		waitFor(t, older, "the other listener's SYN", func(p Packet) bool { return p.IsSYN() && p.Src.Port() == o })
		if err := s.Sync(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return k, o
	}
	for _, tc := range []struct {
		name      string
		ports     []uint16
		none      bool // KeepNone instead of SetPorts
		wantKept  int
		wantOther int
	}{
		{"one port", []uint16{keptPort}, false, 3, 0},
		{"one port twice, among others", []uint16{1, keptPort, 2, keptPort}, false, 3, 0},
		{"none", nil, true, 0, 0},
		{"one port after none", []uint16{keptPort}, false, 3, 0},
		{"none again", nil, true, 0, 0},
		{"cleared", nil, false, 3, 3},
		{"too many to filter", portsUpTo(maxPorts+1, keptPort), false, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := func() error { return s.SetPorts(tc.ports) }
			if tc.none {
				set = s.KeepNone
			}
			if err := set(); err != nil {
				t.Fatal(err)
			}
			k, o := dialBoth()
			if n := count(k); n != tc.wantKept {
				t.Errorf("%d segments of the kept port's connection, want %d (3: SYN, SYN-ACK sent and received)", n, tc.wantKept)
			}
			if n := count(o); n != tc.wantOther {
				t.Errorf("%d segments of the other port's connection, want %d", n, tc.wantOther)
			}
		})
	}
}

// portsUpTo returns n distinct ports, one of them p.
func portsUpTo(n int, p uint16) []uint16 {
	ports := []uint16{p}
	for q := uint16(1); len(ports) < n; q++ {
		if q != p {
			ports = append(ports, q)
		}
	}
	return ports
}

// TestSetPortsAttachesOnlyChanges counts the filters SetPorts attaches: a
// call that leaves the filter as it is (the same ports in another order, or
// "every port" said another way, KeepNone twice) attaches none, KeepNone is
// not "every port", and a failed attach keeps the old filter on record.
func TestSetPortsAttachesOnlyChanges(t *testing.T) {
	s := openOrSkip(t, Config{Ifindex: 1})
	old := attachFilter
	defer func() { attachFilter = old }()
	var attached int
	var fail error
	attachFilter = func(rc syscall.RawConn, prog []bpf.RawInstruction) error {
		if fail != nil {
			return fail
		}
		attached++
		return old(rc, prog)
	}
	for _, step := range []struct {
		ports []uint16
		none  bool // KeepNone instead of SetPorts
		fail  error
		want  int // attaches so far
	}{
		{nil, false, nil, 0}, // every port, as opened
		{portsUpTo(maxPorts+1, 7), false, nil, 0},
		{[]uint16{7, 9}, false, nil, 1},
		{[]uint16{9, 7, 9}, false, nil, 1},
		{[]uint16{7}, false, unix.ENOMEM, 1},
		{[]uint16{7}, false, nil, 2}, // the failed attach left {7, 9} in place
		{[]uint16{}, false, nil, 3},
		{nil, true, nil, 4}, // none is not every port
		{nil, true, nil, 4},
		{nil, false, unix.ENOMEM, 4},
		{nil, false, nil, 5}, // the failed attach left none in place
		{nil, true, nil, 6},
		{[]uint16{7}, false, nil, 7},
	} {
		fail = step.fail
		call, err := fmt.Sprintf("SetPorts(%v)", step.ports), error(nil)
		if step.none {
			call, err = "KeepNone()", s.KeepNone()
		} else {
			err = s.SetPorts(step.ports)
		}
		if !errors.Is(err, step.fail) || (step.fail == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", call, err, step.fail)
		}
		if attached != step.want {
			t.Fatalf("after %s: %d filters attached, want %d", call, attached, step.want)
		}
	}
}
