package listener

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/tune"
	"github.com/synhold/synhold/listener/capture"
)

// strictEvents collects events and fails the test for any OnEvent call after
// Close returned.
type strictEvents struct {
	t        *testing.T
	closed   atomic.Bool
	mu       sync.Mutex
	es       []Event
	onSYNACK func()
}

func (r *strictEvents) add(e Event) {
	if r.closed.Load() {
		r.t.Errorf("OnEvent(%v) after Close returned", e.Kind)
	}
	r.mu.Lock()
	r.es = append(r.es, e)
	r.mu.Unlock()
	if e.Kind == SYNACKSent && r.onSYNACK != nil {
		r.onSYNACK()
	}
}

func (r *strictEvents) kinds(client netip.AddrPort) []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []EventKind
	for _, e := range r.es {
		if e.Client == client || e.Kind == Released && !e.Client.IsValid() {
			ks = append(ks, e.Kind)
		}
	}
	return ks
}

// TestCloseRightAfterAcceptReportsTheSYNACK does what a Happy Eyeballs pair
// does: release, accept, close at once. Every pair's events must include the
// SYN-ACK, in order after the release, and none may come after Close.
func TestCloseRightAfterAcceptReportsTheSYNACK(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			for i := range 20 {
				r := &strictEvents{t: t}
				h, err := Listen(fam.network, fam.address, Config{Strategy: Replay, OnEvent: r.add})
				skipUnlessListened(t, fam.network, err)
				if err != nil {
					t.Fatal(err)
				}
				// Release once the SYN is seen: a release before the
				// capture hands the SYN over would report it the other
				// way round, as a replay after the release.
				dialed := make(chan net.Conn, 1)
				go func() {
					c, err := net.DialTimeout(fam.network, h.Addr().String(), 5*time.Second)
					if err != nil {
						t.Error(err)
					}
					dialed <- c
				}()
				waitFor(t, func() bool { return len(h.Handshakes()) == 1 })
				h.Release()
				c := <-dialed
				if c == nil {
					h.Close()
					t.Fatal(err)
				}
				s, err := h.Accept()
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				h.Close()
				r.closed.Store(true)
				c.Close()
				client := netaddrOf(c.LocalAddr())
				got := r.kinds(client)
				want := []EventKind{SYNSeen, Released, SYNACKSent}
				if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
					t.Fatalf("pair %d: events %v, want %v", i, got, want)
				}
			}
		})
	}
}

func netaddrOf(a net.Addr) netip.AddrPort { return clientKey(a.(*net.TCPAddr).AddrPort()) }

// TestSlowOnEventNeverDelaysARelease blocks OnEvent until the test ends:
// the release must still come on time, and Close must still deliver every
// event once OnEvent is let go.
func TestSlowOnEventNeverDelaysARelease(t *testing.T) {
	unblock := make(chan struct{})
	var synacks, released atomic.Int32
	at := time.Now().Add(200 * time.Millisecond)
	h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay, At: at, OnEvent: func(e Event) {
		<-unblock
		switch e.Kind {
		case SYNACKSent:
			synacks.Add(1)
		case Released:
			released.Add(1)
		}
	}})
	skipUnlessListened(t, "tcp4", err)
	if err != nil {
		t.Fatal(err)
	}
	go acceptAndClose(h)
	// Many SYNs, each an event OnEvent holds up.
	var wg sync.WaitGroup
	var late atomic.Int64
	for range 20 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp4", h.Addr().String(), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			if d := time.Since(at); int64(d) > late.Load() {
				late.Store(int64(d))
			}
			c.Close()
		})
	}
	wg.Wait()
	if d := time.Duration(late.Load()); d > 150*time.Millisecond {
		t.Errorf("with OnEvent blocked, a connect completed %v after the instant, want within 150ms", d)
	}
	close(unblock)
	h.Close()
	if s, r := synacks.Load(), released.Load(); s != 20 || r != 1 {
		t.Errorf("by Close, OnEvent saw %d SYN-ACKs and %d releases, want 20 and 1", s, r)
	}
}

// TestCloseFromOnEvent closes the listener from its own OnEvent: no
// deadlock, and no event after.
func TestCloseFromOnEvent(t *testing.T) {
	r := &strictEvents{t: t}
	var h *Held
	closed := make(chan struct{})
	r.onSYNACK = func() {
		h.Close()
		r.closed.Store(true)
		close(closed)
	}
	h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay, At: time.Now().Add(20 * time.Millisecond), OnEvent: r.add})
	skipUnlessListened(t, "tcp4", err)
	if err != nil {
		t.Fatal(err)
	}
	go acceptAndClose(h)
	done := make(chan struct{})
	go func() { // a concurrent Close waits for the one in OnEvent
		<-closed
		h.Close()
		close(done)
	}()
	c, err := net.DialTimeout("tcp4", h.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close from OnEvent deadlocked")
	}
}

// TestSYNACKTimeIsTheObserversTime compares the SYN-ACK time the listener
// reports with the one an independent observer on lo records (tcpdump's
// copy): within 20 µs, and not before the copy sent.
func TestSYNACKTimeIsTheObserversTime(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: Replay, At: time.Now().Add(100 * time.Millisecond)})
			read := observer(t, h.AddrPort().Port())
			_, client := dial(t, fam.network, h.Addr(), 5*time.Second)
			seen := read(time.Now().Add(2 * time.Second))
			hs, ok := h.Handshake(client)
			if !ok || hs.SYNACK.IsZero() || seen.IsZero() {
				t.Fatalf("handshake %+v, observer %v: want both SYN-ACK times", hs, seen)
			}
			if d := hs.SYNACK.Sub(seen); d.Abs() > 20*time.Microsecond {
				t.Errorf("SYN-ACK at %v, the observer's %v: %v apart, want within 20µs", hs.SYNACK, seen, d)
			}
			if hs.SYNACKSent.IsZero() || hs.SYNACK.Before(hs.SYNACKSent) {
				t.Errorf("SYN-ACK received %v, sent %v: want sent, then received", hs.SYNACK, hs.SYNACKSent)
			}
		})
	}
}

// TestCaptureFaultIsAnEvent makes the capture fail for good: every listener
// of the engine gets a Fault event, says it now holds by retransmission, and
// still lets its clients in after the release.
func TestCaptureFaultIsAnEvent(t *testing.T) {
	closeIdleEngines()
	fail := make(chan struct{})
	old := readPacket
	readPacket = func(s *capture.Socket) (capture.Packet, error) {
		p, err := old(s)
		select {
		case <-fail:
			return capture.Packet{}, errors.New("capture: read: recvmsg: input/output error")
		default:
		}
		return p, err
	}
	t.Cleanup(func() { readPacket = old; closeIdleEngines() })
	var ev events
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: Replay, OnEvent: ev.add})
	close(fail)
	dialErr := make(chan error, 1)
	go func() { // its SYN goes through the failing capture
		c, err := net.DialTimeout("tcp4", h.Addr().String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		dialErr <- err
	}()
	waitFor(t, func() bool { return len(ev.of(Fault)) == 1 })
	if f := ev.of(Fault)[0]; f.Err == nil || h.Strategy() != Retransmit {
		t.Errorf("Fault %+v, Strategy %v: want an error, and retransmit", f, h.Strategy())
	}
	h.Release()
	if err := <-dialErr; err != nil {
		t.Errorf("client after the fault and the release: %v, want connected at its retransmission", err)
	}
	h2, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.sys.eng == h.sys.eng {
		t.Error("a listener opened after the fault got the failed engine")
	}
}

// TestClockFaultIsAnEvent: a fault of the release clock reaches every open
// listener as an event.
func TestClockFaultIsAnEvent(t *testing.T) {
	var a, b events
	ha := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: Retransmit, OnEvent: a.add})
	hb := listenOrSkip(t, "tcp6", "[::1]:0", Config{Strategy: Retransmit, OnEvent: b.add})
	clockFault(errors.New("releaseclock: read timerfd: bad file descriptor"))
	ha.Close()
	hb.Close()
	if len(a.of(Fault)) != 1 || len(b.of(Fault)) != 1 {
		t.Errorf("Fault events %v and %v, want one each", a.of(Fault), b.of(Fault))
	}
}

// TestEngineOutlivesItsLastListener: listeners opened one after another share
// one engine while it lingers, and closeIdleEngines closes it.
func TestEngineOutlivesItsLastListener(t *testing.T) {
	closeIdleEngines()
	var opens atomic.Int32
	old := openEngine
	openEngine = func(c tune.Config) (*engine, error) { opens.Add(1); return old(c) }
	t.Cleanup(func() { openEngine = old })
	for range 3 {
		h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay})
		skipUnlessListened(t, "tcp4", err)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
	}
	if n := opens.Load(); n != 1 {
		t.Errorf("%d engines opened for 3 listeners one after another, want 1", n)
	}
	closeIdleEngines()
	engineMu.Lock()
	defer engineMu.Unlock()
	if len(engines) != 0 {
		t.Error("closeIdleEngines left the idle engine open")
	}
}

// TestOnEventMayWriteIntoThePacket: an OnEvent that writes into a SYN
// event's packet (a pcap writer fixing a field, say) must not change the
// SYN the listener replays: the handshake still completes at the instant,
// not at the client's retransmission.
func TestOnEventMayWriteIntoThePacket(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			at := time.Now().Add(300 * time.Millisecond)
			scribble := func(e Event) {
				if e.Kind == SYNSeen {
					clear(e.IP)
				}
			}
			h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: Replay, At: at, OnEvent: scribble})
			done, _ := dial(t, fam.network, h.Addr(), 5*time.Second)
			if late := done.Sub(at); late > 500*time.Millisecond {
				t.Fatalf("connect completed %v after the instant: the replayed SYN was the one OnEvent wrote into", late)
			}
		})
	}
}
