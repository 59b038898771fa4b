package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
)

// BenchmarkBurst releases n handshakes at once, in process: one listener
// per held SYN, instants 10 µs apart, the SYN-ACK times from the listeners'
// own capture. It reports the SYN-ACK's error (p50, p99, max; early-us is
// the most any came before its instant) and the clock thread's CPU per
// release, wake-ups, and the share of its batches' wall time it was on its
// CPU, from its own counters. A lower bound of what a
// user sees; the bench measures from outside.
//
//	go test -run '^$' -bench Burst -benchtime 1x -count 3 ./listener
func BenchmarkBurst(b *testing.B) {
	for _, n := range []int{100, 300} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var lates []time.Duration
			var cpu, busy time.Duration
			var fired, wakeups uint64
			for range b.N {
				l, st := burst(b, n)
				lates = append(lates, l...)
				cpu, busy, fired, wakeups = cpu+st.CPU, busy+st.Busy, fired+st.Fired, wakeups+st.Batches
			}
			slices.Sort(lates)
			q := func(p float64) float64 { return float64(lates[int(p*float64(len(lates)-1))]) / 1e3 }
			b.ReportMetric(q(0.5), "p50-us")
			b.ReportMetric(q(0.99), "p99-us")
			b.ReportMetric(q(1), "max-us")
			b.ReportMetric(max(0, -q(0))/1, "early-us")
			b.ReportMetric(float64(cpu)/1e3/float64(max(fired, 1)), "clock-cpu-us/release")
			b.ReportMetric(float64(wakeups)/float64(b.N), "wakeups/burst")
			b.ReportMetric(100*float64(cpu)/float64(max(busy, 1)), "clock-on-cpu-%")
		})
	}
}

// burst is one burst of n; st is what the clock thread did meanwhile.
func burst(b *testing.B, n int) (lates []time.Duration, st releaseclock.Stats) {
	b.Helper()
	b.StopTimer()
	var mu sync.Mutex
	t0 := time.Now().Add(300*time.Millisecond + time.Duration(n)*3*time.Millisecond)
	hs := make([]*Held, 0, n)
	defer func() {
		for _, h := range hs {
			h.Close()
		}
	}()
	for i := range n {
		h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: Replay, At: t0.Add(time.Duration(i) * 10 * time.Microsecond),
			OnEvent: func(e Event) {
				if e.Kind == SYNACKSent {
					mu.Lock()
					lates = append(lates, e.Late())
					mu.Unlock()
				}
			}})
		if errors.Is(err, os.ErrPermission) {
			b.Skipf("needs CAP_NET_RAW: %v", err)
		}
		if err != nil {
			b.Fatal(err)
		}
		hs = append(hs, h)
	}
	before, _ := releaseclock.Current()
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i, h := range hs {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp4", h.Addr().String(), 10*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			conns[i] = c
		})
	}
	b.StartTimer()
	wg.Wait()
	b.StopTimer()
	if time.Now().Before(t0) {
		b.Fatal("dials completed before the instant")
	}
	after, _ := releaseclock.Current()
	// The clock adds its counts once the batch ends, after the last fire.
	for deadline := time.Now().Add(5 * time.Second); after.Fired-before.Fired < uint64(n) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		after, _ = releaseclock.Current()
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	for _, h := range hs {
		h.Close() // delivers every event
	}
	hs = nil
	if len(lates) != n {
		b.Fatalf("%d SYN-ACKs seen of %d", len(lates), n)
	}
	return lates, releaseclock.Stats{CPU: after.CPU - before.CPU, Busy: after.Busy - before.Busy,
		Fired: after.Fired - before.Fired, Batches: after.Batches - before.Batches}
}
