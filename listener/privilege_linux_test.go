package listener

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/internal/tune"
)

// withoutCaps runs fn on a locked OS thread whose effective capabilities
// lack caps. Capabilities are per thread on Linux, so the rest of the
// process keeps its own.
func withoutCaps(t *testing.T, caps []int, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var saved, dropped [2]unix.CapUserData
	if err := unix.Capget(&hdr, &saved[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	dropped = saved
	for _, c := range caps {
		dropped[0].Effective &^= 1 << c
	}
	if err := unix.Capset(&hdr, &dropped[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	fn()
	if err := unix.Capset(&hdr, &saved[0]); err == nil {
		runtime.UnlockOSThread() // else the thread ends with the goroutine
	}
}

// skipUnlessQueueHold skips t, as a missing kernel feature, unless h holds
// SYNs with a full accept queue: a test of that fallback has nothing to test
// where the kernel lets the hold filter attach without CAP_NET_ADMIN
// (kernel.unprivileged_bpf_disabled unset). Root cannot change that; the
// kernel's configuration does.
func skipUnlessQueueHold(t *testing.T, h *Held) {
	t.Helper()
	if m := h.Mechanism(); m != "full accept queue" {
		testenv.SkipWithoutFeature(t, "a kernel that refuses the hold filter without CAP_NET_ADMIN (kernel.unprivileged_bpf_disabled), for the full accept queue fallback; here the mechanism is "+m, nil)
	}
}

// TestRealMissingPrivilege opens the engine, probes and listens without
// CAP_NET_RAW for real, not through a seam.
func TestRealMissingPrivilege(t *testing.T) {
	closeIdleEngines() // a lingering engine would serve the listener
	forgetProbe()
	t.Cleanup(forgetProbe)
	withoutCaps(t, []int{unix.CAP_NET_RAW}, func() {
		if _, err := newEngine(tune.Get()); !errors.Is(err, os.ErrPermission) {
			t.Errorf("newEngine(tune.Get()) error %v, want a permission error", err)
		}
		if s, err := Probe(); s != Retransmit || !errors.Is(err, os.ErrPermission) {
			t.Errorf("Probe() = %v, %v; want retransmit and a permission error", s, err)
		}
		h, err := Listen("tcp4", "127.0.0.1:0", Config{})
		if err != nil {
			t.Fatalf("Listen(Auto) without CAP_NET_RAW: %v", err)
		}
		defer h.Close()
		if h.Strategy() != Retransmit {
			t.Errorf("Auto picked %v without CAP_NET_RAW, want retransmit", h.Strategy())
		}
	})
}

// TestQueueHoldWhenTheFilterIsRefused: where attaching a socket filter needs
// CAP_NET_ADMIN (kernel.unprivileged_bpf_disabled), SYNs are held by a full
// accept queue instead, for both strategies, and still never answered early.
func TestQueueHoldWhenTheFilterIsRefused(t *testing.T) {
	for _, tc := range []struct {
		strategy Strategy
		caps     []int
		slack    time.Duration
	}{
		{Replay, []int{unix.CAP_NET_ADMIN}, 150 * time.Millisecond},
		{Retransmit, []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}, 1500 * time.Millisecond},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			at := time.Now().Add(400 * time.Millisecond)
			var (
				h   *Held
				err error
			)
			withoutCaps(t, tc.caps, func() {
				h, err = Listen("tcp4", "127.0.0.1:0", Config{Strategy: tc.strategy, At: at})
			})
			skipUnlessListened(t, "tcp4", err)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			skipUnlessQueueHold(t, h)
			accepted := acceptAll(h, 2)
			waitFor(t, func() bool { return h.waiting.Load() == 1 }) // Accept is waiting: it must not take the plug
			done, client := dial(t, "tcp4", h.Addr(), 5*time.Second)
			if late := done.Sub(at); tooEarly(done, at) || late > tc.slack {
				t.Fatalf("connect completed %v after the instant, want within [-%v, %v]", late, maxEarly, tc.slack)
			}
			if got := <-accepted; got != client {
				t.Errorf("Accept returned %v, want the client %v (not the plug)", got, client)
			}
		})
	}
}

// TestHoldAgainWithAFullAcceptQueue: where the filter is refused, Hold puts
// the full accept queue back, with an Accept waiting all along that must not
// take the new plug, and the next release lets the held client in.
func TestHoldAgainWithAFullAcceptQueue(t *testing.T) {
	var (
		h   *Held
		err error
	)
	withoutCaps(t, []int{unix.CAP_NET_ADMIN}, func() {
		h, err = Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay, At: time.Now()})
	})
	skipUnlessListened(t, "tcp4", err)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	skipUnlessQueueHold(t, h)
	accepted := acceptAll(h, 8)
	_, first := dial(t, "tcp4", h.Addr(), 2*time.Second)
	if got := <-accepted; got != first {
		t.Fatalf("accepted %v, want %v", got, first)
	}
	for range 2 { // twice: the second Hold does nothing
		if err := h.Hold(); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := net.DialTimeout("tcp4", h.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("handshake completed after Hold")
	}
	connected := make(chan netip.AddrPort, 1)
	go func() {
		c, err := net.DialTimeout("tcp4", h.Addr().String(), 5*time.Second)
		if err != nil {
			t.Error(err)
			close(connected)
			return
		}
		connected <- c.LocalAddr().(*net.TCPAddr).AddrPort()
		c.Close()
	}()
	waitFor(t, func() bool { return len(h.Handshakes()) >= 3 }) // its SYN is held
	released := time.Now()
	h.Release()
	client := <-connected
	if d := time.Since(released); d > time.Second {
		t.Errorf("held client connected %v after the release, want at its replay", d)
	}
	for got := range accepted {
		if got == client {
			return
		}
		if got != first {
			t.Fatalf("Accept returned %v: not a client (the plug?)", got)
		}
	}
}

// acceptAll accepts and closes every connection of ln, sending each
// client's address on the channel it returns (buffered for n), which it
// closes when Accept fails.
func acceptAll(ln net.Listener, n int) <-chan netip.AddrPort {
	accepted := make(chan netip.AddrPort, n)
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			c.Close()
		}
	}()
	return accepted
}
