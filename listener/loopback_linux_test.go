package listener

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/netnstest"
	"github.com/synhold/synhold/listener/capture"
)

// TestLoopbackSYNStampedOnItsDevice checks that a SYN on loopback is timed
// by a capture bound to the loopback device, as "tcpdump -i lo" times it,
// and seen once. The kernel hands a received packet first to the packet
// sockets bound to every device, then to those bound to its device, and
// each stamps it when handed it; a capture bound to every device stamped
// loopback SYNs 10-70 µs (under load, milliseconds) before tcpdump did.
//
// In a namespace of its own (so that the engine opens after it), the test
// opens a packet socket bound to every device: the engine's loopback
// capture must stamp each SYN no earlier than it. Bound to every device,
// the engine's socket, newer, was handed each packet first and stamped it
// earlier. Both stamps must be the kernel's at delivery, not recvmsg's:
// capture.Open returns once the kernel stamps on arrival (else the first
// SYNs could carry the stamps of the reads, the reference's, after the
// dials, later than the engine's).
func TestLoopbackSYNStampedOnItsDevice(t *testing.T) {
	p := netnstest.New(t)
	for _, tc := range []struct{ network, address string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			var (
				ref *capture.Socket
				h   *Held
				ev  events
			)
			err := p.Server.Do(func() (err error) {
				if ref, err = capture.Open(capture.Config{}); err != nil {
					return err
				}
				h, err = Listen(tc.network, tc.address, Config{Strategy: Replay, OnEvent: ev.add})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			defer h.Close()
			h.Release()
			go acceptAndClose(h)
			const conns = 5
			err = p.Server.Do(func() error {
				for range conns {
					c, err := net.DialTimeout(tc.network, h.Addr().String(), 5*time.Second)
					if err != nil {
						return err
					}
					c.Close()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// The reference socket's stamps of the same SYNs.
			type key struct {
				src netip.AddrPort
				isn uint32
			}
			refAt := map[key]time.Time{}
			ref.SetReadDeadline(time.Now().Add(2 * time.Second))
			for len(refAt) < conns {
				pk, err := ref.ReadPacket()
				if err != nil {
					t.Fatalf("reference capture: %v after %d SYNs", err, len(refAt))
				}
				if pk.IsSYN() && !pk.Outgoing && pk.Dst.Port() == h.AddrPort().Port() {
					refAt[key{pk.Src, pk.Seq}] = pk.Time
				}
			}
			waitFor(t, func() bool { return len(ev.of(SYNSeen)) >= conns })
			syns := ev.of(SYNSeen)
			if len(syns) != conns {
				t.Errorf("%d SYN events for %d connections, want one each", len(syns), conns)
			}
			for _, e := range syns {
				r, ok := refAt[key{e.Client, e.ISN}]
				switch {
				case !ok:
					t.Errorf("SYN event %v ISN %d not seen by the reference capture", e.Client, e.ISN)
				case e.Retransmit:
					t.Errorf("SYN of %v marked a retransmission", e.Client)
				case e.Time.Before(r):
					t.Errorf("SYN of %v stamped %v before the socket bound to every device: the capture is not the loopback device's", e.Client, r.Sub(e.Time))
				default:
					t.Logf("SYN of %v stamped %v after the socket bound to every device", e.Client, e.Time.Sub(r))
				}
			}
		})
	}
}
