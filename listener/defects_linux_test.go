package listener

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/listener/capture"
)

// TestReleaseThenHoldNeverAcceptsAPlug: with a full accept queue holding,
// Release then Hold with no Accept between leaves the first plug queued
// behind the second: the next release's Accept must skip both and return
// the client.
func TestReleaseThenHoldNeverAcceptsAPlug(t *testing.T) {
	var (
		h   *Held
		err error
	)
	withoutCaps(t, []int{unix.CAP_NET_ADMIN}, func() {
		h, err = Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay, At: time.Now()}) // released at once
	})
	skipUnlessListened(t, "tcp4", err)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	skipUnlessQueueHold(t, h)
	if err := h.Hold(); err != nil { // no Accept since the release: the first plug is still queued
		t.Fatal(err)
	}
	h.Release()
	_, client := dial(t, "tcp4", h.Addr(), 2*time.Second)
	accepted := acceptAll(h, 4)
	if got := <-accepted; got != client {
		t.Errorf("Accept returned %v, want the client %v (not a plug)", got, client)
	}
}

// countingClock is a release clock that counts the jobs scheduled and not
// yet fired or cancelled.
type countingClock struct {
	releaseclock.Clock
	mu   sync.Mutex
	live map[*releaseclock.Job]bool
}

func (c *countingClock) SchedulePrepared(at time.Time, prepare func(), fire func(time.Time)) *releaseclock.Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	var j *releaseclock.Job
	j = c.Clock.SchedulePrepared(at, prepare, func(now time.Time) {
		c.mu.Lock()
		delete(c.live, j)
		c.mu.Unlock()
		fire(now)
	})
	c.live[j] = true
	return j
}

func (c *countingClock) Schedule(at time.Time, fire func(time.Time)) *releaseclock.Job {
	return c.SchedulePrepared(at, nil, fire)
}

func (c *countingClock) Cancel(j *releaseclock.Job) {
	c.mu.Lock()
	delete(c.live, j)
	c.mu.Unlock()
	c.Clock.Cancel(j)
}

func (c *countingClock) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live)
}

// TestForgottenFlowsLeaveNoClockJob feeds a listener with a verdict per
// connection more SYNs than it remembers: the flows it forgets must take
// their clock jobs with them.
func TestForgottenFlowsLeaveNoClockJob(t *testing.T) {
	at := time.Now().Add(time.Hour)
	h := listenOrSkip(t, "tcp4", "127.0.0.1:0", Config{Strategy: Replay, Decide: func(SYN) Verdict { return Verdict{At: at} }})
	clk := &countingClock{Clock: h.clk, live: map[*releaseclock.Job]bool{}}
	h.mu.Lock()
	h.clk = clk
	h.mu.Unlock()
	const extra = 10
	for i := range maxFlows + extra {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 40000)
		h.onSYN(capture.Packet{
			Segment: capture.Segment{Src: src, Dst: h.AddrPort(), Seq: uint32(i), Flags: capture.SYN},
			Time:    time.Now(), Ifindex: loopbackIfindex, IP: warmSYN(src, h.AddrPort()),
		})
	}
	if got := clk.count(); got != maxFlows {
		t.Errorf("%d clock jobs live for %d remembered flows (%d forgotten), want %d", got, maxFlows, extra, maxFlows)
	}
}

// TestNamespaceUnknownIsAnError: when the calling thread's network
// namespace cannot be told, strategy Replay must fail, not share the
// engine of whatever namespace first failed the same way.
func TestNamespaceUnknownIsAnError(t *testing.T) {
	old := statNetns
	t.Cleanup(func() { statNetns = old })
	statNetns = func(string, *unix.Stat_t) error { return unix.EACCES }
	h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay})
	if err == nil {
		h.Close()
		t.Fatal("Listen with the namespace unknown succeeded, want an error")
	}
	if !errors.Is(err, unix.EACCES) {
		t.Errorf("Listen: %v, want it to wrap the stat's EACCES", err)
	}
}
