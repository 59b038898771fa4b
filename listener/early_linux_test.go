package listener

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/internal/tune"
	"github.com/synhold/synhold/listener/capture"
)

// TestEarlyStartNeverCompletesBeforeTheInstant releases many held
// handshakes one after another, each family in turn, with the early start
// on, and checks that none's SYN-ACK (as the capture records it, within a
// microsecond of tcpdump) came more than 20 µs before its instant, and that
// the lead was learned (so the early start was in play).
func TestEarlyStartNeverCompletesBeforeTheInstant(t *testing.T) {
	if !tune.Default().EarlyStart {
		t.Fatal("tune.Default().EarlyStart is off; this test checks the default")
	}
	const rounds = 24 // per family; the lead needs leadMinSamples first
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			for i := range rounds {
				at := time.Now().Add(30 * time.Millisecond)
				h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: Replay, At: at})
				_, client := dial(t, fam.network, h.Addr(), 3*time.Second)
				hs, ok := h.Handshake(client)
				if !ok || hs.SYNACK.IsZero() {
					t.Fatalf("round %d: no SYN-ACK recorded for %v", i, client)
				}
				if tooEarly(hs.SYNACK, hs.Want) {
					t.Errorf("round %d: SYN-ACK %v before its instant, want at most %v", i, hs.Want.Sub(hs.SYNACK), maxEarly)
				}
				if i == rounds-1 {
					a := h.AddrPort().Addr()
					if lead := h.sys.eng.leadFor(a.Is4(), !a.Is4()); lead <= 0 {
						t.Errorf("after %d releases the lead is %v, want it learned (> 0)", rounds, lead)
					}
				}
				h.Close()
			}
		})
	}
}

// TestLeadLearner checks the lead: none before leadMinSamples, then the
// smallest recent latency less the margin, within [0, maxLead].
func TestLeadLearner(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"none", nil, 0},
		{"too few", []time.Duration{90 * us, 80 * us}, 0},
		{"smallest less margin", []time.Duration{90 * us, 80 * us, 70 * us, 100 * us, 95 * us, 60 * us, 85 * us, 75 * us}, 60*us - leadMargin},
		{"capped", []time.Duration{1e6 * us, 1e6 * us, 1e6 * us, 1e6 * us, 1e6 * us, 1e6 * us, 1e6 * us, 1e6 * us}, maxLead},
		{"never negative", []time.Duration{us, us, us, us, us, us, us, us}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l leadLearner
			for _, d := range tc.samples {
				l.learn(d)
			}
			if got := l.lead(); got != tc.want {
				t.Errorf("lead = %v, want %v", got, tc.want)
			}
		})
	}
	var l leadLearner // the oldest samples are forgotten
	l.learn(10 * us)
	for range leadSamples {
		l.learn(100 * us)
	}
	if got, want := l.lead(), 100*us-leadMargin; got != want {
		t.Errorf("after the small sample aged out: lead = %v, want %v", got, want)
	}
}

// TestWarmerDrawsNoHandshake sends the warm-up SYN of each family three
// times, one at a time, and watches lo, with an observer of the test's own
// on the warm-up listener's port, for what the warm-up must do and what it
// must not:
//   - its SYN reaches the warm-up listener through the hold filter and draws
//     a SYN-ACK (so the path is exercised), addressed to the warm-up's own
//     source port and no other: a SYN-ACK that reached a client's socket
//     would be a handshake offered to it;
//   - the warm-up's source answers that SYN-ACK with a RST, never with an
//     ACK: an ACK completes a handshake;
//   - once every RST is seen, the listener has nothing to accept.
//
// It catches a warm-up that never reaches the listener (a wrong checksum,
// address or mark: no SYN-ACK), one whose SYN-ACK goes to another port, and
// one that completes a handshake (an ACK on lo, a connection to accept),
// such as a warm-up sent from a socket that connects rather than one that
// is only bound.
func TestWarmerDrawsNoHandshake(t *testing.T) {
	for _, fam := range []struct {
		name   string
		family int
	}{{"ipv4", unix.AF_INET}, {"ipv6", unix.AF_INET6}} {
		t.Run(fam.name, func(t *testing.T) {
			c, err := replay.Open(fam.family)
			if fam.family == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				testenv.SkipWithoutIPv6(t, err)
			}
			testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
			defer c.Close()
			w := openWarmer(fam.family)
			if w == nil {
				t.Fatal("no warm-up sockets on loopback")
			}
			defer w.close()
			// The two sockets' own addresses, not the SYN's: a SYN from
			// another port would draw a SYN-ACK to that port.
			src, ln := boundAddr(t, w.src), boundAddr(t, w.ln)
			next := watchLo(t, ln.Port())
			for round := range 3 {
				w.warm(c)
				synacks := 0
				for answered := false; !answered; {
					s, ok := next(time.Now().Add(2 * time.Second))
					switch {
					case !ok && synacks == 0:
						t.Fatalf("round %d: no SYN-ACK from the warm-up listener %v: the warm-up SYN did not reach it", round, ln)
					case !ok:
						t.Fatalf("round %d: the warm-up listener's SYN-ACK to %v got no answer", round, src)
					case s.Src == ln && s.IsSYNACK():
						if s.Dst != src {
							t.Errorf("round %d: SYN-ACK to %v, want only to the warm-up's source %v", round, s.Dst, src)
						}
						synacks++
					case s.Src == src && s.Dst == ln && !s.IsSYN():
						if !s.Flags.Has(capture.RST) {
							t.Errorf("round %d: the warm-up's source answered the SYN-ACK with %v, want a RST (no handshake)", round, s.Flags)
						}
						answered = true
					case s.Src == ln:
						t.Errorf("round %d: the warm-up listener sent %v %v to %v, want only a SYN-ACK", round, s.Flags, s.Segment, s.Dst)
					}
				}
			}
			if _, _, err := unix.Accept(w.ln); err != unix.EAGAIN {
				t.Errorf("accept on the warm-up listener = %v, want EAGAIN (nothing completed)", err)
			}
		})
	}
}

// boundAddr returns the address socket fd is bound to.
func boundAddr(t *testing.T, fd int) netip.AddrPort {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(os.NewSyscallError("getsockname", err))
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	t.Fatalf("getsockname: %T, want an IP address", sa)
	return netip.AddrPort{}
}
