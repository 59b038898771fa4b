package main

import (
	"fmt"
	"strings"

	"github.com/synhold/synhold/bench/internal/stats"
)

// reportMany writes the section of many handshakes at once, as it is
// used: the pools beside the floor, the parallel suite, the lone control
// reply beside the do-nothing server, and the clock's CPU per release.
func reportMany(b *strings.Builder, r *Results) {
	suite, hasSuite := usedRowOf(r.Suite, "suite/8")
	idle, hasIdle := usedRowOf(r.AsUsed, "used/idle")
	if len(r.Pool) == 0 && len(r.Floor) == 0 && !hasSuite && !(hasIdle && idle.ControlFloor.N > 0) {
		return
	}
	b.WriteString("## 0b. Many at once, as it is used, beside this machine's floor\n\n")
	if len(r.Pool) > 0 || len(r.Floor) > 0 {
		fmt.Fprintf(b, "**Pools.** `cmd/handshake-proxy` built with `go build` and run in its own process; a proxy to a "+
			"loopback upstream created and `handshake_delay` %d ms set through toxiproxy's own Go client; a client process "+
			"dials n connections at once (a goroutine and `net.Dial` each), keeps them until every dial returned, closes them, "+
			"and waits 300 ms before the next round. Error: tcpdump's SYN-ACK − tcpdump's first SYN − %d ms; \"SYN resent\": "+
			"connections of which tcpdump saw three SYNs or more (the client's, the proxy's replay, the client's retransmission "+
			"after a second unanswered). **Floor**: in this "+
			"process, n clients held by the hold filter on one listening socket and their SYNs replayed by hand back to back "+
			"on one locked thread (detach, one `sendto(2)` each): the last SYN-ACK as tcpdump stamped it − the time before the "+
			"first `sendto`, median of its rounds, measured in the same run just before the pools. Clock CPU: the proxy's "+
			"thread named `%s` (`/proc/PID/task/TID/schedstat`) over the rounds, divided by the handshakes; where no thread "+
			"has that name, the whole process's, which says so. Load: /proc/loadavg when the row started.\n\n",
			poolDelay.Milliseconds(), poolDelay.Milliseconds(), clockThreadName)
		b.WriteString("| at once | rounds | seen / dialled | error p50 | p99 | max | > 20 µs early | SYN resent | floor for n | per handshake | p99 / floor | clock CPU per release | CPU of | load | tcpdump dropped |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, p := range r.Pool {
			per := "–"
			for _, f := range r.Floor {
				if f.N == p.N {
					per = stats.FmtUS(f.PerHandshakeUS)
				}
			}
			fmt.Fprintf(b, "| %d | %d | %d/%d | %s | %s | %s | %d | %d | %s | %s | %.2f | %s | %s | %s | %d |\n", p.N, p.Rounds,
				p.Seen, p.Dialled, stats.Cell(p.Error, p.Error.P50US), stats.Cell(p.Error, p.Error.P99US), stats.Cell(p.Error, p.Error.MaxUS), p.Early, p.Resent, stats.FmtUS(p.FloorUS), per,
				p.FloorRatio, stats.FmtUS(p.CPU.PerReleaseUS), p.CPU.Thread, p.Load, p.Dropped)
		}
		if len(r.Pool) == 0 {
			for _, f := range r.Floor {
				fmt.Fprintf(b, "| %d (floor only) | %d | – | – | – | – | – | – | %s | %s | – | – | – | %s | %d |\n", f.N, f.Rounds,
					stats.FmtUS(f.SpanUS), stats.FmtUS(f.PerHandshakeUS), f.Load, f.Dropped)
			}
		}
		b.WriteString("\n")
	}
	if hasSuite || hasIdle {
		b.WriteString("**Parallel suite and lone pair.** The suite: `happyeyeballs-server` as in section 0, " +
			fmt.Sprint(suiteClients) + " client processes at once, each asking for pairs one after another (IPv6 first, IPv4 " +
			"250 ms later), tcpdump as the observer. The lone pair: section 0's idle case, whose client also asks a do-nothing " +
			"Go server (in its own process, answering the same request with fixed ports) before each pair, after the same " +
			"idle time. Clock CPU: the server's thread named `" + clockThreadName + "` between the client's start and end, " +
			"divided by the server's `released` lines; \"server's own figure\" is what the server logs at shutdown (`release clock`: " +
			"its clock thread's own CPU time over the releases of its whole run), where it logs it.\n\n")
		b.WriteString("| case | pairs | release p50 | p99 | max | > 20 µs early | control reply p50 | p99 | do-nothing server p50 | p99 | reply − do-nothing, p50 | clock CPU per release | CPU of | server's own figure | load |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, u := range []UsedRow{idle, suite} {
			if u.Name == "" {
				continue
			}
			diff := "–"
			if u.ControlFloor.N > 0 {
				diff = stats.FmtUS(u.Reply.P50US - u.ControlFloor.P50US)
			}
			own := "–"
			if u.ClockCPU.ServerReleases > 0 {
				own = fmt.Sprintf("%s over %d releases", stats.FmtUS(u.ClockCPU.ServerPerReleaseUS), u.ClockCPU.ServerReleases)
			}
			fmt.Fprintf(b, "| %s (%d client process(es)) | %d | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				u.Label, u.Clients, u.Pairs, stats.Cell(u.Release, u.Release.P50US), stats.Cell(u.Release, u.Release.P99US), stats.Cell(u.Release, u.Release.MaxUS), u.Early,
				stats.Cell(u.Reply, u.Reply.P50US), stats.Cell(u.Reply, u.Reply.P99US), stats.Cell(u.ControlFloor, u.ControlFloor.P50US), stats.Cell(u.ControlFloor, u.ControlFloor.P99US), diff,
				stats.FmtUS(u.ClockCPU.PerReleaseUS), stats.OrDash(u.ClockCPU.Thread), own, stats.OrDash(u.Load))
		}
		b.WriteString("\n")
	}
}
