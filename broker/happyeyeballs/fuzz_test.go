package happyeyeballs

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synhold/synhold/listener"
)

// fakeListener stands in for a held listener in the fuzz target: it opens
// no socket, accepts nothing, and counts itself open until closed.
type fakeListener struct {
	addr     netip.AddrPort
	strategy listener.Strategy // Retransmit unless the factory says replay
	open     *atomic.Int64
	closed   chan struct{}
	once     sync.Once
}

func (l *fakeListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *fakeListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.open.Add(-1)
	})
	return nil
}

func (l *fakeListener) AddrPort() netip.AddrPort    { return l.addr }
func (l *fakeListener) ReleaseAt(time.Time)         {}
func (l *fakeListener) Strategy() listener.Strategy { return cmp.Or(l.strategy, listener.Retransmit) }
func (l *fakeListener) Handshake(netip.AddrPort) (listener.Handshake, bool) {
	return listener.Handshake{}, false
}

// fakeFactory makes fake listeners, on made-up ports, or fails every
// listen with EADDRINUSE.
type fakeFactory struct {
	open   atomic.Int64
	next   atomic.Uint32
	fail   bool
	failV6 atomic.Int64 // how many more tcp6 listens fail
	calls  atomic.Int64
	replay bool // its listeners claim strategy Replay (they see the SYNs a test feeds)
}

func (f *fakeFactory) listen(network, address string, _ listener.Config) (heldListener, error) {
	f.calls.Add(1)
	if f.fail || network == "tcp6" && f.failV6.Add(-1) >= 0 {
		return nil, fmt.Errorf("fake listen %s %s: %w", network, address, syscall.EADDRINUSE)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, err
	}
	if ap.Port() == 0 {
		ap = netip.AddrPortFrom(ap.Addr(), uint16(20000+f.next.Add(1)%40000))
	}
	f.open.Add(1)
	l := &fakeListener{addr: ap, open: &f.open, closed: make(chan struct{})}
	if f.replay {
		l.strategy = listener.Replay
	}
	return l, nil
}

// wantReply checks reply against the protocol, independently of
// parseRequest: what data asks for, given the server's SamePort and whether
// listeners could be opened. The server is fresh: a judgement request
// names a port no pair was handed out on.
func wantReply(data []byte, samePort, listenFails bool, reply []byte) error {
	first := data[0]
	switch first {
	case 0x04, 0x06, 0x14, 0x16:
		return wantPairReply(first, samePort || first&0x10 != 0, listenFails, reply)
	case 0xF0, 0xFF:
		if len(reply) != 1 || reply[0] != 0x01 {
			return fmt.Errorf("0x%02x: reply % x, want 01", first, reply)
		}
	default:
		if len(reply) != 1 || reply[0] != 0x00 {
			return fmt.Errorf("0x%02x: reply % x, want 00", first, reply)
		}
	}
	return nil
}

func wantPairReply(first byte, same, listenFails bool, reply []byte) error {
	n := 5
	if same {
		n = 3
	}
	switch {
	case listenFails && (len(reply) != 1 || reply[0] != 0x00):
		return fmt.Errorf("0x%02x with failing listeners: reply % x, want 00", first, reply)
	case listenFails:
		return nil
	case len(reply) != n || reply[0] != 0x01:
		return fmt.Errorf("0x%02x: reply % x, want 01 and %d port bytes", first, reply, n-1)
	}
	for i := 1; i < n; i += 2 {
		if binary.BigEndian.Uint16(reply[i:]) == 0 {
			return fmt.Errorf("0x%02x: reply % x has port 0", first, reply)
		}
	}
	if !same && binary.BigEndian.Uint16(reply[1:]) == binary.BigEndian.Uint16(reply[3:]) {
		return fmt.Errorf("0x%02x: reply % x gives one port to both families", first, reply)
	}
	return nil
}

// FuzzControl sends arbitrary byte streams down one control connection (a
// net.Pipe, with fake listeners, so it is fast) and checks that the reply
// is always a valid one for the first byte, nothing panics, 0xFF stops the
// server, and after Shutdown no goroutine or listener is left. The second
// byte, when there is one, also picks the server's SamePort (bit 7) and
// makes every listen fail (a multiple of 5).
func FuzzControl(f *testing.F) {
	for _, seed := range []string{
		"", "\x04", "\x06", "\x14", "\x16", "\xf0", "\xff", "\x00", "\x05", "\xfe",
		"\x04\x80", "\x06\x05", "\x14\x0a", "\x16\x85", "\xff\xff\xff", "\xf0\x04\x06",
		"\x04\x06\x14\x16\xf0\xff", "GET / HTTP/1.1\r\n\r\n",
		"\xe0", "\xe0\x4e", "\xe0\x4e\x21", "\xe0\x00\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data)
	})
}

func fuzzOne(t *testing.T, data []byte) {
	fac := &fakeFactory{fail: len(data) > 1 && data[1]%5 == 0}
	idle := 5 * time.Second // never reached: the client writes at once or hangs up
	if len(data) > 0 && data[0] == reqJudge && len(data) < 3 {
		idle = 100 * time.Millisecond // reached: the port never comes
	}
	s := newServer(t, Config{
		SamePort:    len(data) > 1 && data[1]&0x80 != 0,
		IdleTimeout: idle,
		Logger:      slog.New(slog.DiscardHandler),
	})
	s.listen = fac.listen
	var judged *Judgement
	if len(data) >= 3 && data[0] == reqJudge && !fac.fail {
		data, judged = fuzzJudgeSetup(t, s, data)
	}
	reply := fuzzExchange(s, data)
	if judged != nil {
		if err := wantJudgeReply(data, *judged, reply); err != nil {
			t.Error(err)
		}
	} else if len(data) == 0 {
		if len(reply) != 0 {
			t.Errorf("no request, reply % x", reply)
		}
	} else if err := wantReply(data, s.cfg.SamePort, fac.fail, reply); err != nil {
		t.Error(err)
	}
	if len(data) > 0 && data[0] == 0xFF {
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Error("0xff did not close Done")
		}
	}
	fuzzShutdown(t, s, fac)
}

// fuzzJudgeSetup readies a judgement request: it has a pair handed out
// (closed if bit 0 of the fourth byte is set) and XORs the request's port
// with the pair's, so that 0xE0 0x00 0x00 names that pair and any other
// port none. It returns the request and what the pair's judgement is (a
// zero Judgement while it is open).
func fuzzJudgeSetup(t *testing.T, s *Server, data []byte) ([]byte, *Judgement) {
	reply := fuzzExchange(s, []byte{0x04})
	if len(reply) < 3 || reply[0] != replyOK {
		t.Fatalf("pair request: reply % x", reply)
	}
	port := binary.BigEndian.Uint16(reply[1:3])
	s.mu.Lock()
	p := s.byPort[port]
	s.mu.Unlock()
	j := &Judgement{}
	if len(data) > 3 && data[3]&1 == 1 {
		p.close("fuzz")
		s.mu.Lock()
		judged := s.judgedOn[port]
		s.mu.Unlock()
		j = &judged
	}
	data = slices.Clone(data)
	binary.BigEndian.PutUint16(data[1:3], port^binary.BigEndian.Uint16(data[1:3]))
	j.Pair = p.id
	if binary.BigEndian.Uint16(data[1:3]) != port {
		j.Pair = 0 // names no pair
	}
	return data, j
}

// wantJudgeReply checks the answer to a judgement request: 0x00 for a port
// that names no pair (j.Pair 0), 0x02 while the pair is open (j.Verdict
// ""), else 0x01, the length and the JSON of j.
func wantJudgeReply(data []byte, j Judgement, reply []byte) error {
	switch {
	case j.Pair == 0:
		if !bytes.Equal(reply, []byte{replyFailure}) {
			return fmt.Errorf("% x names no pair: reply % x, want 00", data, reply)
		}
	case j.Verdict == "":
		if !bytes.Equal(reply, []byte{replyOpen}) {
			return fmt.Errorf("% x names an open pair: reply % x, want 02", data, reply)
		}
	default:
		if len(reply) < 5 || reply[0] != replyOK || int(binary.BigEndian.Uint32(reply[1:5])) != len(reply)-5 {
			return fmt.Errorf("% x names a closed pair: reply % x, want 01, a length and that much JSON", data, reply)
		}
		got, err := decodeJudgement(reply[5:])
		if err != nil {
			return err
		}
		if got.Pair != j.Pair || got.Verdict != Unknown || got.Why != j.Why || len(got.Deviations) != 0 {
			return fmt.Errorf("% x: judgement %+v, want %+v (fake listeners capture nothing: unknown)", data, got, j)
		}
	}
	return nil
}

// fuzzExchange writes data to a control connection of s and returns all
// the server sent back before closing.
func fuzzExchange(s *Server, data []byte) []byte {
	srv, cli := net.Pipe()
	s.startConn(srv)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if len(data) == 0 {
			cli.Close() // nothing to say: hang up
			return
		}
		cli.Write(data) // returns once the server hangs up
	}()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(cli)
	cli.Close()
	<-wrote
	return reply
}

// fuzzShutdown stops s and checks that nothing it opened is left.
func fuzzShutdown(t *testing.T, s *Server, fac *fakeFactory) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	s.mu.Lock()
	pairs, conns := len(s.pairs), len(s.conns)
	s.mu.Unlock()
	if n := fac.open.Load(); n != 0 || pairs != 0 || conns != 0 {
		t.Errorf("after Shutdown: %d listeners open, %d pairs, %d control connections", n, pairs, conns)
	}
}

// TestFuzzSeedsLeakNoGoroutines runs every single-byte input
// and a few longer ones through the fuzz body, then checks that the
// process has no more goroutines than before.
func TestFuzzSeedsLeakNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 256 {
		for _, tail := range []string{"", "\x80", "\x05", "\x01\x02\x03"} {
			fuzzOne(t, append([]byte{byte(i)}, tail...))
		}
	}
	fuzzOne(t, nil)
	if _, g := settle(t, 1<<30, before, 5*time.Second); g > before {
		t.Errorf("%d goroutines after the fuzz bodies, %d before", g, before)
	}
}

func TestSamePortRetries(t *testing.T) {
	for _, tc := range []struct {
		taken     int64 // how many port numbers ::1 has taken
		wantOK    bool
		wantCalls int64
	}{
		{0, true, 2},
		{3, true, 8},
		{samePortTries - 1, true, 2 * samePortTries},
		{samePortTries, false, 2 * samePortTries},
	} {
		t.Run(strconv.Itoa(int(tc.taken)), func(t *testing.T) {
			fac := &fakeFactory{}
			fac.failV6.Store(tc.taken)
			s := newServer(t, Config{Logger: slog.New(slog.DiscardHandler), Spares: 0}) // counts every listen
			s.listen = fac.listen
			reply := fuzzExchange(s, []byte{0x16})
			if ok := len(reply) == 3 && reply[0] == replyOK; ok != tc.wantOK || len(reply) == 0 {
				t.Errorf("%d ports taken on ::1: reply % x, want success %v", tc.taken, reply, tc.wantOK)
			}
			if n := fac.calls.Load(); n != tc.wantCalls {
				t.Errorf("%d listens, want %d", n, tc.wantCalls)
			}
			if n, want := fac.open.Load(), map[bool]int64{true: 2, false: 0}[tc.wantOK]; n != want {
				t.Errorf("%d listeners open, want %d: the IPv4 side of a failed try was not closed", n, want)
			}
			fuzzShutdown(t, s, fac)
		})
	}
}

// TestSpares checks that pairs opened ahead are handed out first, in
// order, and replaced; that a request of another kind gets a pair of its
// own; and that Shutdown closes the spares.
func TestSpares(t *testing.T) {
	fac := &fakeFactory{}
	s := newServer(t, Config{Logger: slog.New(slog.DiscardHandler), Spares: 2})
	s.listen = fac.listen
	spares := func() []*pair {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			s.mu.Lock()
			ps, filling := slices.Clone(s.spares), s.filling
			s.mu.Unlock()
			if len(ps) == 2 && !filling {
				return ps
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d spares after 5 s, want 2", len(ps))
			}
		}
	}
	s.fill()
	ready := spares()
	if n := fac.calls.Load(); n != 4 {
		t.Fatalf("%d listens for 2 spares, want 4", n)
	}
	for i, b := range []byte{0x04, 0x06} {
		reply := fuzzExchange(s, []byte{b})
		want := encodeReply(request{Op: opPair}, ready[i].sides[0].port(), ready[i].sides[1].port())
		if !bytes.Equal(reply, want) {
			t.Errorf("request %d: reply % x, want the spare's % x", i, reply, want)
		}
	}
	spares()
	if n := fac.calls.Load(); n != 8 {
		t.Errorf("%d listens after 2 spares were handed out, want 8", n)
	}
	reply := fuzzExchange(s, []byte{0x14})
	if len(reply) != 3 || reply[0] != replyOK {
		t.Fatalf("same-port request: reply % x", reply)
	}
	if n := fac.calls.Load(); n != 10 {
		t.Errorf("%d listens after a same-port request, want 10 (its own pair)", n)
	}
	fuzzShutdown(t, s, fac)
}
