package listener

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/netnstest"
)

// TestHeldAcrossVeth holds handshakes on a non-loopback address, with the
// client on another host (a namespace joined by a veth pair).
func TestHeldAcrossVeth(t *testing.T) {
	p := netnstest.New(t)
	const delay = 400 * time.Millisecond
	for _, tc := range []struct {
		network string
		server  netip.Addr
	}{
		{"tcp4", p.Server.Addr4},
		{"tcp6", p.Server.Addr6},
	} {
		t.Run(tc.network, func(t *testing.T) {
			waitPath(t, p, tc.network, tc.server)
			var (
				h  *Held
				ev events
			)
			at := time.Now().Add(delay)
			err := p.Server.Do(func() (err error) {
				h, err = Listen(tc.network, netip.AddrPortFrom(tc.server, 0).String(), Config{Strategy: Replay, At: at, OnEvent: ev.add})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			go acceptAndClose(h)
			var (
				c    net.Conn
				done time.Time
			)
			err = p.Client.Do(func() (err error) {
				c, err = net.DialTimeout(tc.network, h.Addr().String(), 5*time.Second)
				done = time.Now()
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if late := done.Sub(at); tooEarly(done, at) || late > 150*time.Millisecond {
				t.Fatalf("connect completed %v after the instant, want within [-%v, 150ms]; the listener's events:\n%s", late, maxEarly, ev.describe(at))
			}
			hs, ok := h.Handshake(c.LocalAddr().(*net.TCPAddr).AddrPort())
			if !ok || hs.Client.Addr() != c.LocalAddr().(*net.TCPAddr).AddrPort().Addr() {
				t.Fatalf("handshake from the client host not recorded: %+v", hs)
			}
			t.Logf("%s across veth: SYN-ACK %v after the instant", tc.network, hs.Late())
		})
	}
}

// waitPath waits until a handshake crosses the veth pair, from p.Client to
// server, so that the path is proven and the neighbours resolved before a
// timed handshake: in 5 of ~700 runs the first SYN over a new pair reached
// the server's device only a second after the dial (a capture of the
// test's own on every device of the server's namespace saw nothing before
// the client's retransmission), which the timing check charged to the
// listener.
func waitPath(t *testing.T, p *netnstest.Pair, network string, server netip.Addr) {
	t.Helper()
	var ln net.Listener
	err := p.Server.Do(func() (err error) {
		ln, err = net.Listen(network, netip.AddrPortFrom(server, 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAndClose(ln)
	err = p.Client.Do(func() error {
		c, err := net.DialTimeout(network, ln.Addr().String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("no handshake across the veth pair within 5 s: %v", err)
	}
}
