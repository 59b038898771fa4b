package listener

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synhold/synhold/listener/capture"
)

// countCapture counts the packets the engine's captures hand over that are
// of port (0: of any port), through the readPacket seam; the engine must
// open after it.
func countCapture(t *testing.T) (port *atomic.Uint32, n *atomic.Int64) {
	t.Helper()
	closeIdleEngines()
	port, n = new(atomic.Uint32), new(atomic.Int64)
	old := readPacket
	readPacket = func(s *capture.Socket) (capture.Packet, error) {
		p, err := old(s)
		if pp := uint16(port.Load()); err == nil && (pp == 0 || p.Src.Port() == pp || p.Dst.Port() == pp) {
			n.Add(1)
		}
		return p, err
	}
	t.Cleanup(func() { closeIdleEngines(); readPacket = old })
	return port, n
}

// isMuted reports whether a quiet listener has left the capture.
func (h *Held) isMuted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.muted
}

// TestQuietListenerLeavesTheCapture: a released quiet listener wakes the
// capture for none of its connections, once the SYN-ACK of the handshake
// its release let through was captured; a default one still sees each
// connection's SYN and both copies of its SYN-ACK; and an engine with no
// listener left keeps nothing, rather than every port.
func TestQuietListenerLeavesTheCapture(t *testing.T) {
	const conns = 20
	for _, tc := range []struct {
		name    string
		network string
		quiet   bool
		want    int64 // packets of the port over conns connections after the release
	}{
		{"default", "tcp4", false, 3 * conns},
		{"quiet", "tcp4", true, 0},
		{"quiet", "tcp6", true, 0},
	} {
		t.Run(tc.name+"/"+tc.network, func(t *testing.T) {
			port, n := countCapture(t)
			var ev events
			addr := "127.0.0.1:0"
			if tc.network == "tcp6" {
				addr = "[::1]:0"
			}
			h := listenOrSkip(t, tc.network, addr, Config{Strategy: Replay, Quiet: tc.quiet, OnEvent: ev.add})
			port.Store(uint32(h.AddrPort().Port()))
			done := make(chan netip.AddrPort, 1)
			go func() {
				c, err := net.DialTimeout(tc.network, h.Addr().String(), 5*time.Second)
				if err != nil {
					t.Errorf("dial: %v", err)
					done <- netip.AddrPort{}
					return
				}
				c.Close()
				done <- clientKey(c.LocalAddr().(*net.TCPAddr).AddrPort())
			}()
			waitFor(t, func() bool { return len(ev.of(SYNSeen)) == 1 })
			h.Release()
			client := <-done
			if hs, ok := h.Handshake(client); !ok || hs.SYNACK.IsZero() {
				t.Errorf("the held handshake the release let through: %+v, %v; want its SYN-ACK captured", hs, ok)
			}
			if tc.quiet {
				waitFor(t, h.isMuted)
			}
			if err := h.sys.eng.lo.Sync(time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			n.Store(0)
			for range conns {
				dial(t, tc.network, h.Addr(), 5*time.Second)
			}
			h.syncCapture()
			if got := n.Load(); got != tc.want {
				t.Errorf("%d packets of the port captured over %d connections after the release, want %d", got, conns, tc.want)
			}
		})
	}
	t.Run("no listener left", func(t *testing.T) {
		port, n := countCapture(t)
		h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: Replay})
		eng := h.sys.eng
		h.Close() // the engine lingers
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go acceptAndClose(ln)
		port.Store(0)
		n.Store(0)
		for range conns {
			dial(t, "tcp4", ln.Addr(), 5*time.Second)
		}
		eng.sync()
		if got := n.Load(); got != 0 {
			t.Errorf("the lingering engine captured %d packets of another program's %d connections, want none", got, conns)
		}
	})
}

// TestQuietHoldCapturesEverySYNItDrops: a client dials in a loop while a
// quiet listener is held and released again and again. Hold puts the port
// back in the capture before the hold, so every SYN the hold drops is
// captured and replayed at the release: no connection waits for its
// client's retransmission (1 s).
func TestQuietHoldCapturesEverySYNItDrops(t *testing.T) {
	const cycles = 30
	var ev events
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: Replay, Quiet: true, OnEvent: ev.add})
	h.Release()
	waitFor(t, h.isMuted)
	held := func() int { // SYNs seen while holding
		n := 0
		for _, e := range ev.of(SYNSeen) {
			if e.Want.IsZero() {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		slow  []time.Duration
		dials int
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			c, err := net.DialTimeout("tcp4", h.Addr().String(), 5*time.Second)
			took := time.Since(start)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			c.Close()
			mu.Lock()
			dials++
			if took > 900*time.Millisecond { // a client retransmits its SYN 1 s after it
				slow = append(slow, took)
			}
			mu.Unlock()
		}
	})
	for range cycles {
		before := held()
		if err := h.Hold(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return held() > before })
		h.Release()
		waitFor(t, h.isMuted)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(slow) > 0 {
		t.Errorf("%d of %d connections waited for a retransmission (%v): a SYN the hold dropped went uncaptured", len(slow), dials, slow)
	}
	if got := held(); got < cycles {
		t.Errorf("%d SYNs held over %d holds, want one each at least", got, cycles)
	}
}
