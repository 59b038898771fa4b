package listener

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/testenv"
)

// TestRefuseAtTheVerdictsInstant: a Verdict that refuses makes the client's
// connect(2) fail with ECONNREFUSED at the instant, not before.
func TestRefuseAtTheVerdictsInstant(t *testing.T) {
	const delay = 300 * time.Millisecond
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			var ev events
			var (
				mu   sync.Mutex
				want time.Time
			)
			h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: Replay, OnEvent: ev.add, Decide: func(s SYN) Verdict {
				mu.Lock()
				defer mu.Unlock()
				want = s.Time.Add(delay)
				return Verdict{At: want, Refuse: true}
			}})
			_, err := net.DialTimeout(fam.network, h.Addr().String(), 5*time.Second)
			done := time.Now()
			if !errors.Is(err, unix.ECONNREFUSED) {
				t.Fatalf("dial: %v, want connection refused", err)
			}
			mu.Lock()
			at := want
			mu.Unlock()
			if done.Before(at) {
				t.Fatalf("refused %v before the verdict's instant", at.Sub(done))
			}
			if late := done.Sub(at); late > 150*time.Millisecond {
				t.Errorf("refused %v after the instant, want within 150ms", late)
			}
			waitFor(t, func() bool { return len(ev.of(Refused)) == 1 })
			if r := ev.of(Refused)[0]; !r.Want.Equal(at) || r.Err != nil || r.Time.Before(at) {
				t.Errorf("Refused event %+v, want Want %v, no error, Time not before it", r, at)
			}
			if n := len(ev.of(Released)); n != 0 {
				t.Errorf("%d Released events for a refused connection, want 0", n)
			}
		})
	}
}

// TestHoldAfterReleaseHoldsAgain: Hold re-arms a released listener for both
// Linux strategies; the next release lets the held client in.
func TestHoldAfterReleaseHoldsAgain(t *testing.T) {
	for _, fam := range families {
		for _, strategy := range []Strategy{Replay, Retransmit} {
			t.Run(fam.network+"/"+strategy.String(), func(t *testing.T) {
				h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: strategy, At: time.Now()})
				dial(t, fam.network, h.Addr(), 2*time.Second) // released: at once
				if err := h.Hold(); err != nil {
					t.Fatal(err)
				}
				if err := h.Hold(); err != nil { // idempotent
					t.Fatal(err)
				}
				if c, err := net.DialTimeout(fam.network, h.Addr().String(), 300*time.Millisecond); err == nil {
					c.Close()
					t.Fatal("handshake completed after Hold")
				}
				connected := make(chan time.Time, 1)
				go func() {
					c, err := net.DialTimeout(fam.network, h.Addr().String(), 5*time.Second)
					if err != nil {
						t.Error(err)
						close(connected)
						return
					}
					connected <- time.Now()
					c.Close()
				}()
				// Release once the client's SYN is held: seen by the
				// capture with Replay (the first client's, the refused
				// dial's, this one's); with Retransmit, where nothing of
				// the listener's shows it, once the client waits in
				// SYN_SENT for an answer (its connect sent the SYN).
				if strategy == Replay {
					waitFor(t, func() bool { return len(h.Handshakes()) >= 3 })
				} else {
					waitFor(t, func() bool { return testenv.SYNSentTo(t, h.AddrPort()) })
				}
				released := time.Now()
				h.Release()
				slack := 150 * time.Millisecond
				if strategy == Retransmit {
					slack = 1500 * time.Millisecond
				}
				select {
				case at, ok := <-connected:
					if ok && (at.Before(released) || at.Sub(released) > slack) {
						t.Errorf("connected %v after the release, want within [0, %v]", at.Sub(released), slack)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the held client did not connect after the release")
				}
			})
		}
	}
}

// TestReleaseHeldLeavesTimedVerdictsAlone: ReleaseHeld lets the untimed
// connection in at once, and the timed one at its own instant.
func TestReleaseHeldLeavesTimedVerdictsAlone(t *testing.T) {
	const timed = 800 * time.Millisecond
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			var (
				mu     sync.Mutex
				n      int
				timeAt time.Time
			)
			h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: Replay, Decide: func(s SYN) Verdict {
				mu.Lock()
				defer mu.Unlock()
				n++
				if n == 1 {
					timeAt = s.Time.Add(timed)
					return Verdict{At: timeAt}
				}
				return Verdict{} // held until released
			}})
			type result struct {
				at  time.Time
				err error
			}
			dialer := func() chan result {
				ch := make(chan result, 1)
				go func() {
					c, err := net.DialTimeout(fam.network, h.Addr().String(), 5*time.Second)
					ch <- result{time.Now(), err}
					if err == nil {
						c.Close()
					}
				}()
				return ch
			}
			first := dialer()
			waitFor(t, func() bool { return len(h.Handshakes()) == 1 })
			second := dialer()
			waitFor(t, func() bool { return len(h.Handshakes()) == 2 })
			releasedHeld := time.Now()
			h.ReleaseHeld()
			r := <-second
			if r.err != nil || r.at.Sub(releasedHeld) > 150*time.Millisecond {
				t.Errorf("untimed client: %v, %v after ReleaseHeld; want connected within 150ms", r.err, r.at.Sub(releasedHeld))
			}
			r = <-first
			mu.Lock()
			at := timeAt
			mu.Unlock()
			if r.err != nil || tooEarly(r.at, at) || r.at.Sub(at) > 150*time.Millisecond {
				t.Errorf("timed client: %v, connected %v after its instant; want within [-%v, 150ms]", r.err, r.at.Sub(at), maxEarly)
			}
			// Still holding: a third client is decided and held.
			if c, err := net.DialTimeout(fam.network, h.Addr().String(), 300*time.Millisecond); err == nil {
				c.Close()
				t.Error("a client after ReleaseHeld was let in: the listener must keep holding")
			}
		})
	}
}

func TestVerdictErrors(t *testing.T) {
	decide := func(SYN) Verdict { return Verdict{} }
	if _, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Retransmit, Decide: decide}); !errors.Is(err, ErrNeedsReplay) {
		t.Errorf("Decide with Retransmit: %v, want ErrNeedsReplay", err)
	}
	if _, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay, Decide: decide, After: time.Second}); err == nil {
		t.Error("Decide and After together: no error")
	}
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: DelayedListen, At: time.Now()})
	waitFor(t, func() bool { return h.Hold() != nil })
	if err := h.Hold(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Hold on delayed listen: %v, want errors.ErrUnsupported", err)
	}
	h.Close()
	if err := h.Hold(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Hold after Close: %v, want net.ErrClosed", err)
	}
}
