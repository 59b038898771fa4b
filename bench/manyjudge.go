package main

import (
	"fmt"
	"strings"

	"github.com/synhold/synhold/bench/internal/stats"
)

// The targets of the rows of many handshakes at once (issue 16), in
// microseconds.
const (
	targetPool100P99   = 500
	targetPool100Max   = 1000
	targetPool300P99   = 1000
	targetPoolFloorX   = 1.5 // the largest pool's p99 over the floor's cost of as many
	targetSuiteP99     = 300
	targetBurstCPU     = 100
	targetEarliest     = -25
	targetReplyOverNop = 100 // lone control reply p50 over the do-nothing server's
)

// poolRow returns the pool row of n connections at once.
func poolRow(rows []PoolRow, n int) (PoolRow, bool) {
	return find(rows, func(row PoolRow) bool { return row.N == n })
}

// manyTargets judge the pools, the parallel suite, the clock's CPU in a
// burst, the lone control reply against its floor, and how early any
// handshake completed.
func manyTargets(r *Results) []Target {
	var ts []Target
	if p, ok := poolRow(r.Pool, 100); ok {
		ts = append(ts, atMost("pool of 100 through handshake-proxy: error p99", p.Error.P99US, p.Error.N, targetPool100P99),
			atMost("pool of 100 through handshake-proxy: error max", p.Error.MaxUS, p.Error.N, targetPool100Max))
	}
	if p, ok := poolRow(r.Pool, 300); ok {
		ts = append(ts, atMost("300 at once through handshake-proxy: error p99", p.Error.P99US, p.Error.N, targetPool300P99))
	}
	if len(r.Pool) > 0 {
		p := r.Pool[len(r.Pool)-1]
		name := fmt.Sprintf("%d at once through handshake-proxy: error p99 against the floor's cost of %d", p.N, p.N)
		t := atMost(name, p.Error.P99US, p.Error.N, targetPoolFloorX*p.FloorUS)
		t.Want = fmt.Sprintf("≤ %.1f × %s = %s", targetPoolFloorX, stats.FmtUS(p.FloorUS), stats.FmtUS(targetPoolFloorX*p.FloorUS))
		if p.FloorUS == 0 {
			t.Got, t.Met, t.By = "no floor measured", false, ""
		}
		ts = append(ts, t)
		c := atMost(fmt.Sprintf("clock thread CPU per release, %d at once (%s)", p.N, p.CPU.Thread), p.CPU.PerReleaseUS,
			p.CPU.Releases, targetBurstCPU)
		ts = append(ts, c)
	}
	if s, ok := usedRowOf(r.Suite, "suite/8"); ok {
		ts = append(ts, atMost("parallel suite (8 processes): release error p99", s.Release.P99US, s.Release.N, targetSuiteP99))
	}
	if u, ok := usedRowOf(r.AsUsed, "used/idle"); ok && u.ControlFloor.N > 0 {
		ts = append(ts, atMost("lone control reply p50 − the do-nothing server's p50", u.Reply.P50US-u.ControlFloor.P50US,
			u.Reply.N, targetReplyOverNop))
	}
	if min, where, n := earliest(r); n > 0 {
		t := Target{Name: "earliest handshake anywhere (as used, pools, suite)", Want: "≥ " + stats.FmtUS(targetEarliest),
			Got: fmt.Sprintf("%s (%s)", stats.FmtUS(min), where), Met: min >= targetEarliest}
		if !t.Met {
			t.By = fmt.Sprintf("%s too early", stats.FmtUS(targetEarliest-min))
		}
		ts = append(ts, t)
	}
	return ts
}

// earliest returns the most negative release error of the rows timed by
// tcpdump, where it was, and how many rows were looked at.
func earliest(r *Results) (float64, string, int) {
	min, where, n := 0.0, "", 0
	see := func(s stats.Summary, name string) {
		if s.N == 0 {
			return
		}
		if n == 0 || s.MinUS < min {
			min, where = s.MinUS, name
		}
		n++
	}
	for _, u := range usedWholeRows(r) {
		see(u.Release, u.Name)
	}
	for _, p := range r.Pool {
		see(p.Error, p.Name)
	}
	return min, where, n
}

// manyFindings say what the pools, the suite and the clock's CPU show.
func manyFindings(r *Results) []string {
	var out []string
	if len(r.Pool) > 0 {
		var parts []string
		for _, p := range r.Pool {
			parts = append(parts, fmt.Sprintf("%d at once: %s, max %s, against the floor's %s for %d (%.2f×); clock CPU %s per release",
				p.N, p50p99(p.Error), stats.FmtUS(p.Error.MaxUS), stats.FmtUS(p.FloorUS), p.N, p.FloorRatio, stats.FmtUS(p.CPU.PerReleaseUS)))
		}
		out = append(out, fmt.Sprintf("Pools through handshake-proxy (handshake_delay %d ms", poolDelay.Milliseconds())+", error = tcpdump's SYN-ACK − "+
			"its first SYN − the delay) — "+strings.Join(parts, "; ")+".")
	}
	if len(r.Floor) > 0 {
		var parts []string
		for _, f := range r.Floor {
			parts = append(parts, fmt.Sprintf("%d: %s (%s each)", f.N, stats.FmtUS(f.SpanUS), stats.FmtUS(f.PerHandshakeUS)))
		}
		out = append(out, "The floor, held SYNs replayed back to back by hand on one thread, last SYN-ACK (tcpdump) − first "+
			"sendto — "+strings.Join(parts, "; ")+".")
	}
	if u, ok := usedRowOf(r.AsUsed, "used/idle"); ok && u.ControlFloor.N > 0 {
		out = append(out, fmt.Sprintf("Lone control reply, one pair after another: the server %s, a do-nothing Go server asked "+
			"the same way after the same idle %s: %s more at the median. The server's clock CPU: %s per release (%s, %d releases).",
			p50p99(u.Reply), p50p99(u.ControlFloor), stats.FmtUS(u.Reply.P50US-u.ControlFloor.P50US), stats.FmtUS(u.ClockCPU.PerReleaseUS),
			u.ClockCPU.Thread, u.ClockCPU.Releases))
	}
	return out
}
