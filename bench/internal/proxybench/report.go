package proxybench

import (
	"fmt"
	"strings"

	"github.com/synhold/synhold/bench/internal/stats"
)

// Report is the proxy section of report.md.
func Report(rows []Row) string {
	var b strings.Builder
	b.WriteString("## Proxy: handshake-proxy against a direct connection and toxiproxy-server\n\n")
	b.WriteString("Separate processes on loopback, one run; an echo upstream (1-byte round trips), a discarding one (one connection's throughput).\n")
	b.WriteString("Round trips, throughput and connections/s in interleaved rounds (round trips pooled, the median round's throughput and connections/s). ")
	b.WriteString("connections/s: sequential connect + 1-byte round trip + close. RSS: the proxy process after those; per idle connection: ")
	b.WriteString("what each of the idle connections (each echoed one byte) held open through a fresh process of the same kind, with the same toxics, added to its RSS.\n\n")
	b.WriteString("| via | toxic | RTT p50 µs | RTT p99 µs | MiB/s | connections/s | connect p50 µs | RSS MB | RSS per idle connection kB |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var fwd []Row
	for _, r := range rows {
		if !strings.HasPrefix(r.Name, "forward_") {
			continue
		}
		fwd = append(fwd, r)
		rss, per := "–", "–"
		if r.RSSMB > 0 {
			rss, per = fmt.Sprintf("%.1f", r.RSSMB), fmt.Sprintf("%.1f (%d)", r.RSSPerIdleKB, r.IdleConns)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.0f | %.1f | %s | %s |\n", r.Via, stats.OrDash(r.Toxic),
			r.RTT.P50US, r.RTT.P99US, r.MBps, r.ConnsPerS, r.Connect.P50US, rss, per)
	}
	if t := forwardTargets(fwd); t != "" {
		b.WriteString("\n" + t)
	}
	b.WriteString("\nHandshakes: for a handshake toxic, connect is the time to connect minus the requested delay (its error).\n")
	b.WriteString("\"wire\" is tcpdump's SYN to SYN-ACK (or RST) on lo, minus the requested delay.\n\n")
	b.WriteString("| row | via | toxic | connect p50 µs | connect p99 µs | wire p50 µs | wire p99 µs | wire min µs | refused | note |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		if strings.HasPrefix(r.Name, "forward_") {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %s |\n", r.Name, r.Via, r.Toxic,
			r.Connect.P50US, r.Connect.P99US, r.Wire.P50US, r.Wire.P99US, r.Wire.MinUS, r.Refused, r.Note)
	}
	return b.String()
}

// forwardTargets compares handshake-proxy's forwarding rows with direct and
// toxiproxy's (its best release on each figure): the targets of issue 13.
func forwardTargets(rows []Row) string {
	var direct, reference, ours, oursToxic *Row
	var theirs, theirsToxic []*Row
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Via == "direct":
			direct = r
		case r.Via == refVia:
			reference = r
		case r.Via == "handshake-proxy" && r.Toxic == "":
			ours = r
		case r.Via == "handshake-proxy":
			oursToxic = r
		case r.Toxic == "":
			theirs = append(theirs, r)
		default:
			theirsToxic = append(theirsToxic, r)
		}
	}
	if direct == nil || ours == nil || len(theirs) == 0 {
		return ""
	}
	best := func(rs []*Row, f func(*Row) float64, low bool) float64 {
		v := f(rs[0])
		for _, r := range rs[1:] {
			if x := f(r); (low && x < v) || (!low && x > v) {
				v = x
			}
		}
		return v
	}
	rtt := func(r *Row) float64 { return r.RTT.P50US }
	mbps := func(r *Row) float64 { return r.MBps }
	rate := func(r *Row) float64 { return r.ConnsPerS }
	idle := func(r *Row) float64 { return r.RSSPerIdleKB }
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	var b strings.Builder
	b.WriteString("Targets (handshake-proxy against direct, and against toxiproxy's best release on each figure):\n\n")
	x := rtt(ours) / rtt(direct)
	fmt.Fprintf(&b, "- RTT p50 %.2f× direct (≤ 2×): %s", x, mark(x <= 2))
	if reference != nil {
		fmt.Fprintf(&b, "; the reference Go splice proxy's: %.2f×", rtt(reference)/rtt(direct))
	}
	b.WriteString("\n")
	x = mbps(ours) / mbps(direct)
	fmt.Fprintf(&b, "- throughput %.0f%% of direct (≥ 80%%): %s\n", 100*x, mark(x >= 0.8))
	x = rate(ours) / best(theirs, rate, false)
	fmt.Fprintf(&b, "- connections/s %.2f× toxiproxy's (≥ 2×): %s", x, mark(x >= 2))
	if reference != nil {
		fmt.Fprintf(&b, "; the reference Go splice proxy's: %.2f×", rate(reference)/best(theirs, rate, false))
	}
	b.WriteString("\n")
	y := best(theirs, idle, true)
	fmt.Fprintf(&b, "- RSS per idle connection %.1f kB, toxiproxy's %.1f kB (no more): %s\n", idle(ours), y, mark(idle(ours) <= y))
	if oursToxic != nil && len(theirsToxic) > 0 {
		r, m := best(theirsToxic, rtt, true), best(theirsToxic, mbps, false)
		fmt.Fprintf(&b, "- with %s: RTT p50 %.1f µs against %.1f µs, %.1f MiB/s against %.1f (no slower): %s\n",
			oursToxic.Toxic, rtt(oursToxic), r, mbps(oursToxic), m, mark(rtt(oursToxic) <= r && mbps(oursToxic) >= m))
	}
	return b.String()
}
