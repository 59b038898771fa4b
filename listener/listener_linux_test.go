package listener

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/internal/tune"
)

// maxEarly is how much before its instant a replayed SYN's SYN-ACK (and so
// the client's connect) may come: the package promises at most ~20 µs
// (the early start's margin, see the package doc), and the tests hold it
// to 25 µs. A refusal is never early: its tests allow nothing.
const maxEarly = 25 * time.Microsecond

// tooEarly reports whether t came more than maxEarly before want.
func tooEarly(t, want time.Time) bool { return want.Sub(t) > maxEarly }

// listenOrSkip opens a held listener, skipping the test when the strategy
// needs a privilege the process lacks (CAP_NET_RAW, for the engine's raw and
// packet sockets) or, for tcp6, when the machine has no IPv6 loopback.
func listenOrSkip(t *testing.T, network, address string, cfg Config) *Held {
	t.Helper()
	h, err := Listen(network, address, cfg)
	skipUnlessListened(t, network, err)
	if err != nil {
		t.Fatalf("Listen(%s, %s): %v", network, address, err)
	}
	t.Cleanup(func() { h.Close() })
	go acceptAndClose(h)
	return h
}

// skipUnlessListened skips t when err, from Listen on network, is a missing
// privilege (naming CAP_NET_RAW) or, for tcp6, a missing IPv6 loopback. It
// returns on any other error, which is the caller's to report.
func skipUnlessListened(t *testing.T, network string, err error) {
	t.Helper()
	switch {
	case errors.Is(err, os.ErrPermission):
		testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	case network == "tcp6" && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL)):
		testenv.SkipWithoutIPv6(t, err)
	}
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// events collects a listener's events for a test.
type events struct {
	mu sync.Mutex
	es []Event
}

func (r *events) add(e Event) { r.mu.Lock(); r.es = append(r.es, e); r.mu.Unlock() }

func (r *events) of(k EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.es {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// describe lists the events, their times relative to at, for a failure's
// message: what the listener saw and did.
func (r *events) describe(at time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.es {
		fmt.Fprintf(&b, "\t%v at %+v: client %v ISN %d retransmit %v replayed %d err %v\n",
			e.Kind, e.Time.Sub(at), e.Client, e.ISN, e.Retransmit, e.Replayed, e.Err)
	}
	return b.String()
}

// dial connects and returns when connect(2) completed, and the client address.
func dial(t *testing.T, network string, to net.Addr, timeout time.Duration) (time.Time, netip.AddrPort) {
	t.Helper()
	c, err := net.DialTimeout(network, to.String(), timeout)
	if err != nil {
		t.Fatalf("dial %v: %v", to, err)
	}
	done := time.Now()
	c.Close()
	return done, c.LocalAddr().(*net.TCPAddr).AddrPort()
}

var families = []struct{ network, address string }{
	{"tcp4", "127.0.0.1:0"},
	{"tcp6", "[::1]:0"},
}

func TestReleaseAtCompletesOnTime(t *testing.T) {
	const delay = 400 * time.Millisecond
	for _, fam := range families {
		for _, tc := range []struct {
			strategy Strategy
			slack    time.Duration // how late the connect may complete on a loaded machine
		}{
			{Replay, 150 * time.Millisecond},
			{Retransmit, 1500 * time.Millisecond}, // the next SYN retransmission
		} {
			t.Run(fam.network+"/"+tc.strategy.String(), func(t *testing.T) {
				var ev events
				at := time.Now().Add(delay)
				h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: tc.strategy, At: at, OnEvent: ev.add})
				if h.Strategy() != tc.strategy {
					t.Fatalf("Strategy() = %v, want %v", h.Strategy(), tc.strategy)
				}
				done, client := dial(t, fam.network, h.Addr(), 5*time.Second)
				if tooEarly(done, at) {
					t.Fatalf("connect completed %v before the instant, want at most %v", at.Sub(done), maxEarly)
				}
				if late := done.Sub(at); late > tc.slack {
					t.Fatalf("connect completed %v after the instant, want within %v", late, tc.slack)
				}
				if tc.strategy != Replay {
					return
				}
				waitFor(t, func() bool { hs, ok := h.Handshake(client); return ok && !hs.SYNACK.IsZero() })
				hs, _ := h.Handshake(client)
				if len(hs.SYNs) == 0 || !hs.SYNs[0].Before(at) {
					t.Errorf("SYN times %v, want one before the instant %v", hs.SYNs, at)
				}
				if tooEarly(hs.SYNACK, at) || hs.Late() > tc.slack {
					t.Errorf("SYN-ACK %v late, want within [-%v, %v]", hs.Late(), maxEarly, tc.slack)
				}
				if !hs.Want.Equal(at) {
					t.Errorf("Want = %v, want %v", hs.Want, at)
				}
				waitFor(t, func() bool { return len(ev.of(Released)) > 0 })
				rel := ev.of(Released)
				if len(rel) != 1 || rel[0].Replayed != 1 || rel[0].Err != nil {
					t.Errorf("Released events %+v, want one that replayed 1 SYN", rel)
				}
			})
		}
	}
}

// waitFor waits until cond holds (state the test observes: an event, a
// handshake recorded, a socket closed), failing the test after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "the test's condition", cond)
}

func TestAfterDelaysEachConnectionFromItsOwnSYN(t *testing.T) {
	const after = 300 * time.Millisecond
	for _, fam := range families {
		t.Run(fam.network, func(t *testing.T) {
			h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: Replay, After: after})
			var wg sync.WaitGroup
			for i, stagger := range []time.Duration{0, 150 * time.Millisecond, 250 * time.Millisecond} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(stagger)
					start := time.Now()
					c, err := net.DialTimeout(fam.network, h.Addr().String(), 5*time.Second)
					if err != nil {
						t.Errorf("client %d: %v", i, err)
						return
					}
					took := time.Since(start)
					hs, ok := h.Handshake(c.LocalAddr().(*net.TCPAddr).AddrPort())
					c.Close()
					if took < after-maxEarly || took > after+150*time.Millisecond {
						t.Errorf("client %d connected after %v, want %v (-%v, +150ms)", i, took, after, maxEarly)
					}
					switch {
					case !ok || len(hs.SYNs) == 0:
						t.Errorf("client %d: no handshake recorded", i)
					case !hs.Want.Equal(hs.SYNs[0].Add(after)):
						t.Errorf("client %d: Want %v, want first SYN %v + %v", i, hs.Want, hs.SYNs[0], after)
					case tooEarly(hs.SYNACK, hs.Want):
						t.Errorf("client %d: SYN-ACK %v before its instant, want at most %v", i, hs.Want.Sub(hs.SYNACK), maxEarly)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestReleaseEarlyAndLateSYNs(t *testing.T) {
	for _, fam := range families {
		for _, strategy := range []Strategy{Replay, Retransmit} {
			t.Run(fam.network+"/"+strategy.String(), func(t *testing.T) {
				h := listenOrSkip(t, fam.network, fam.address, Config{Strategy: strategy, At: time.Now().Add(time.Hour)})
				// Held: a dial with a short timeout must fail, not be answered.
				if c, err := net.DialTimeout(fam.network, h.Addr().String(), 300*time.Millisecond); err == nil {
					c.Close()
					t.Fatal("handshake completed while held")
				}
				h.Release()
				// Released: a new SYN is answered at once.
				start := time.Now()
				dial(t, fam.network, h.Addr(), 2*time.Second)
				if took := time.Since(start); took > 200*time.Millisecond {
					t.Errorf("connect after release took %v, want at once", took)
				}
			})
		}
	}
}

func TestRetransmittedSYNIsOneHandshake(t *testing.T) {
	var ev events
	at := time.Now().Add(1300 * time.Millisecond) // past the first retransmission at ~1 s
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: Replay, At: at, OnEvent: ev.add})
	done, client := dial(t, "tcp4", h.Addr(), 5*time.Second)
	if tooEarly(done, at) {
		t.Fatalf("completed %v before the instant, want at most %v", at.Sub(done), maxEarly)
	}
	hs, ok := h.Handshake(client)
	if !ok || len(hs.SYNs) < 2 {
		t.Fatalf("handshake %+v: want the SYN and at least one retransmission", hs)
	}
	if n := len(h.Handshakes()); n != 1 {
		t.Errorf("%d handshakes recorded, want 1", n)
	}
	var retrans int
	for _, e := range ev.of(SYNSeen) {
		if e.Retransmit {
			retrans++
		}
	}
	if retrans != len(hs.SYNs)-1 {
		t.Errorf("%d SYN events marked retransmission, want %d", retrans, len(hs.SYNs)-1)
	}
}

// withoutPrivilege makes the engine fail as it does without CAP_NET_RAW.
func withoutPrivilege(t *testing.T) {
	closeIdleEngines() // a lingering engine would serve the listener
	forgetProbe()
	old := openEngine
	openEngine = func(tune.Config) (*engine, error) {
		return nil, fmt.Errorf("capture: open: %w", os.NewSyscallError("socket", unix.EPERM))
	}
	t.Cleanup(func() { openEngine = old; forgetProbe() })
}

// TestProbeIsAFeatureProbe: nil when Replay works, a permission error naming
// CAP_NET_RAW when it may not, an inconclusive error otherwise (not
// remembered); the conclusive results are remembered.
func TestProbeIsAFeatureProbe(t *testing.T) {
	closeIdleEngines()
	forgetProbe()
	t.Cleanup(forgetProbe)
	var opens int
	old := openEngine
	t.Cleanup(func() { openEngine = old })
	for _, tc := range []struct {
		name     string
		open     func(tune.Config) (*engine, error)
		strategy Strategy
		check    func(error) bool
		remember bool
	}{
		{"inconclusive", func(tune.Config) (*engine, error) { return nil, errors.New("capture: open: too many open files") }, Retransmit,
			func(err error) bool { return err != nil && !errors.Is(err, os.ErrPermission) }, false},
		{"not permitted", func(tune.Config) (*engine, error) { return nil, os.NewSyscallError("socket", unix.EPERM) }, Retransmit,
			func(err error) bool {
				return errors.Is(err, os.ErrPermission) && strings.Contains(err.Error(), "CAP_NET_RAW")
			}, true},
		{"works", old, Replay, func(err error) bool { return err == nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forgetProbe()
			closeIdleEngines()
			opens = 0
			openEngine = func(c tune.Config) (*engine, error) { opens++; return tc.open(c) }
			for range 3 {
				s, err := Probe()
				if tc.strategy == Replay && errors.Is(err, os.ErrPermission) { // the real engine
					testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
				}
				if s != tc.strategy || !tc.check(err) {
					t.Errorf("Probe() = %v, %v", s, err)
				}
			}
			if want := map[bool]int{true: 1, false: 3}[tc.remember]; opens != want {
				t.Errorf("%d engines opened for 3 probes, want %d", opens, want)
			}
		})
	}
}

func TestAutoWithoutPrivilegeFallsBackToRetransmit(t *testing.T) {
	withoutPrivilege(t)
	if s, err := Probe(); s != Retransmit || !errors.Is(err, os.ErrPermission) {
		t.Errorf("Probe() = %v, %v; want retransmit and a permission error", s, err)
	}
	if _, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay}); !errors.Is(err, unix.EPERM) {
		t.Errorf("Listen(Replay) error %v, want EPERM", err)
	}
	if _, err := Listen("tcp4", "127.0.0.1:0", Config{After: time.Second}); !errors.Is(err, ErrNeedsReplay) {
		t.Errorf("Listen(After) error %v, want ErrNeedsReplay", err)
	}
	at := time.Now().Add(300 * time.Millisecond)
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{At: at})
	if h.Strategy() != Retransmit {
		t.Fatalf("Auto picked %v, want retransmit", h.Strategy())
	}
	if done, _ := dial(t, "tcp4", h.Addr(), 5*time.Second); done.Before(at) {
		t.Fatal("completed before the instant")
	}
}

func TestDelayedListenIsRefusedOnLinux(t *testing.T) {
	at := time.Now().Add(300 * time.Millisecond)
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: DelayedListen, At: at})
	_, err := net.DialTimeout("tcp4", h.Addr().String(), time.Second)
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("dial before listen(2): %v, want connection refused", err)
	}
	// Then the port refuses until the instant and accepts from it on: dial
	// until a dial connects (a refusal comes at once), and check when.
	for deadline := at.Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.DialTimeout("tcp4", h.Addr().String(), time.Second)
		done := time.Now()
		if err == nil {
			c.Close()
			if tooEarly(done, at) {
				t.Fatalf("connected %v before the instant, want at most %v", at.Sub(done), maxEarly)
			}
			return
		}
		if !errors.Is(err, unix.ECONNREFUSED) {
			t.Fatalf("dial: %v, want connection refused until the instant", err)
		}
		if done.After(deadline) {
			t.Fatalf("still refused %v after the instant", done.Sub(at))
		}
	}
}

func TestListenErrors(t *testing.T) {
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		network, address string
		cfg              Config
		want             error
	}{
		{"udp", "127.0.0.1:0", Config{}, nil},
		{"tcp4", "[::1]:0", Config{}, nil},
		{"tcp4", "192.0.2.1:0", Config{Strategy: Retransmit}, unix.EADDRNOTAVAIL},
		{"tcp4", taken.Addr().String(), Config{Strategy: Retransmit}, unix.EADDRINUSE},
	} {
		h, err := Listen(tc.network, tc.address, tc.cfg)
		if err == nil {
			h.Close()
			t.Errorf("Listen(%s, %s) succeeded", tc.network, tc.address)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Listen(%s, %s) = %v, want %v", tc.network, tc.address, err, tc.want)
		}
	}
}

func TestCloseLeavesNothingOpen(t *testing.T) {
	for _, strategy := range []Strategy{Replay, Retransmit, DelayedListen} {
		t.Run(strategy.String(), func(t *testing.T) {
			runtime.GC()
			fds, gs := testenv.OpenFDs(t), runtime.NumGoroutine()
			var hs []*Held
			for range 100 {
				h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: strategy, At: time.Now().Add(time.Hour)})
				skipUnlessListened(t, "tcp4", err)
				if err != nil {
					t.Fatal(err)
				}
				hs = append(hs, h)
			}
			for _, h := range hs {
				if err := h.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				h.Close() // twice is fine
			}
			if _, err := hs[0].Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
			}
			if strategy == Replay {
				engineMu.Lock()
				n := len(engines)
				engineMu.Unlock()
				if n != 1 {
					t.Errorf("%d engines right after the last listener closed, want 1 lingering", n)
				}
			}
			closeIdleEngines()
			waitFor(t, func() bool { return testenv.OpenFDs(t) <= fds && runtime.NumGoroutine() <= gs })
			engineMu.Lock()
			defer engineMu.Unlock()
			if len(engines) != 0 {
				t.Error("engine still open after closeIdleEngines")
			}
		})
	}
}
