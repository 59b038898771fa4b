package listener

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
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

// TestWarmerDrawsNoHandshake warms the release's path through a raw socket
// and checks both halves of what a warm-up must do: its SYN reaches the
// warm-up listener through the hold filter and draws a SYN-ACK (seen on lo
// by an observer of the test's own), so the path is exercised; and that
// listener is left with nothing to accept, since the SYN-ACK was answered
// by a RST. It catches a warm-up that never reaches the listener (a wrong
// checksum or address, a filter that drops it), which would warm nothing,
// and one that completes a handshake, which would leave connections behind.
func TestWarmerDrawsNoHandshake(t *testing.T) {
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		c, err := replay.Open(fam)
		if errors.Is(err, os.ErrPermission) {
			t.Skip("needs CAP_NET_RAW")
		}
		if err != nil {
			t.Fatal(err)
		}
		w := openWarmer(fam)
		if w == nil {
			c.Close()
			t.Fatalf("family %d: no warm-up sockets on loopback", fam)
		}
		seg, err := capture.Decode(w.syn)
		if err != nil {
			t.Fatal(err)
		}
		read := observer(t, seg.Dst.Port())
		for range 3 {
			w.warm(c)
		}
		if at := read(time.Now().Add(2 * time.Second)); at.IsZero() {
			t.Errorf("family %d: no SYN-ACK from the warm-up listener: the warm-up SYN did not reach it", fam)
		}
		if _, _, err := unix.Accept(w.ln); err != unix.EAGAIN {
			t.Errorf("family %d: accept on the warm-up listener = %v, want EAGAIN (nothing completed)", fam, err)
		}
		w.close()
		c.Close()
	}
}
