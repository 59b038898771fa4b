package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/synhold/synhold/bench/internal/stats"
)

// WriteReport writes the headline's Markdown report (report.md) of r to
// w: the machine, the targets, as used with the levers, the scale rows and
// the findings.
func WriteReport(w io.Writer, r *Results) error {
	var b strings.Builder
	var servers [][2]string
	for _, u := range r.AsUsed {
		if len(u.ServerStart) > 0 {
			servers = append(servers, [2]string{"happyeyeballs-server (" + u.Label + ")", strings.ReplaceAll(strings.Join(u.ServerStart, "; "), "|", "/")})
		}
	}
	reportMachine(&b, "synhold benchmark: TCP handshake release accuracy", r.Run, servers)
	reportTargets(&b, r.Targets)
	reportUsed(&b, r)
	reportMany(&b, r)
	reportScale(&b, r.Scale)
	reportList(&b, "Findings", r.Findings)
	b.WriteString("The in-process experiments that explain the levers are in [experiments.md](experiments.md), " +
		"handshake-proxy's figures in [proxy.md](proxy.md) (`go run ./bench experiments`, `go run ./bench proxy`).\n")
	reportDescriptors(&b, r.Descriptors)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteExperimentsReport writes the experiments' Markdown report
// (experiments.md) of r to w.
func WriteExperimentsReport(w io.Writer, r *ExperimentResults) error {
	var b strings.Builder
	reportMachine(&b, "synhold benchmark: the experiments behind the levers", r.Run, nil)
	reportTargets(&b, r.Targets)
	reportList(&b, "Findings", r.Findings)
	reportRelease(&b, r)
	reportStamps(&b, r.Stamps)
	reportScaleKnobs(&b, r)
	reportDescriptors(&b, r.Descriptors)
	_, err := io.WriteString(w, b.String())
	return err
}

// reportMachine writes the report's title and the machine's table, extra
// rows last.
func reportMachine(b *strings.Builder, title string, r Run, extra [][2]string) {
	m := r.Machine
	fmt.Fprintf(b, "# %s\n\n", title)
	fmt.Fprintf(b, "| machine | |\n| --- | --- |\n")
	rows := [][2]string{
		{"kernel", m.Kernel},
		{"CPU", fmt.Sprintf("%s, %d cores", m.CPUModel, m.Cores)},
		{"Go", fmt.Sprintf("%s, GOMAXPROCS=%d", m.GoVersion, m.GOMAXPROCS)},
		{"date", m.Date},
		{"clocksource", m.Clocksource},
		{"load at start", fmt.Sprintf("loadavg %s; CPU idle %.0f%% over 0.5 s", m.LoadAvg, m.IdlePct)},
		{"other busy processes at start", orNone(strings.Join(m.Hogs, "; "))},
		{"RLIMIT_NOFILE", fmt.Sprintf("soft %d raised to %d (hard %d)", m.NoFile.SoftBefore, m.NoFile.Soft, m.NoFile.Hard)},
		{"privilege", m.Privilege},
		{"release clock thread", stats.OrDash(m.ClockThread)},
		{"CLOCK_REALTIME steps during the run", clockSteps(m.ClockSteps)},
		{"TCP sockets in TIME_WAIT", fmt.Sprintf("%d at the start, %d at the end", m.TimeWaitStart, m.TimeWaitEnd)},
		{"command", "`" + r.Options.Command + "`"},
		{"run time", fmt.Sprintf("%.1f s", r.ElapsedS)},
	}
	for _, row := range append(rows, extra...) {
		fmt.Fprintf(b, "| %s | %s |\n", row[0], row[1])
	}
	b.WriteString("\n")
}

// clockSteps lists the wall clock's jumps.
func clockSteps(steps []ClockStep) string {
	if len(steps) == 0 {
		return "none seen"
	}
	var parts []string
	for _, s := range steps {
		parts = append(parts, fmt.Sprintf("%s at %.1f s", stats.FmtUS(s.StepUS), s.AtS))
	}
	return strings.Join(parts, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func reportTargets(b *strings.Builder, targets []Target) {
	b.WriteString("## Targets\n\n| target | want | measured | | by |\n| --- | --- | --- | --- | --- |\n")
	for _, t := range targets {
		verdict := "**missed**"
		if t.Met {
			verdict = "met"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", t.Name, t.Want, t.Got, verdict, stats.OrDash(t.By))
	}
	b.WriteString("\n")
}

// reportList writes a section of bullets, or nothing for none.
func reportList(b *strings.Builder, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "## %s\n\n", title)
	for _, f := range items {
		fmt.Fprintf(b, "- %s\n", f)
	}
	b.WriteString("\n")
}

func reportUsed(b *strings.Builder, r *Results) {
	if len(r.AsUsed) == 0 {
		return
	}
	b.WriteString("## 0. As it is used: the server binary, one pair after another, timed by tcpdump\n\n")
	fmt.Fprintf(b, "`happyeyeballs-server` built with `go build` and run in its own process (`-c 0 --log-format json "+
		"--fast-delay %v --slow-delay %v`, as root); a separate client process asks for pairs one after another (the slow "+
		"family alternating), dials both sides as drivers do — both at once, or IPv6 first and IPv4 %d ms later unless IPv6 "+
		"connected — with Go's `net.Dialer`, reads the winner's byte, closes, and stays idle 100-300 ms before the next "+
		"request. A fresh server per case. The observer is `tcpdump -i lo --time-stamp-precision=nano` (SYN and SYN-ACK "+
		"segments on the ephemeral ports), which on lo records each packet once, as it arrives. Release error: the winner's "+
		"SYN-ACK as tcpdump stamped it minus the instant the server logged for that handshake (`want` of its `connected` "+
		"line). \"server − tcpdump\": the server's `synack` against tcpdump's time of the same packet. Control reply and "+
		"\"client sees\" (its dial returning, minus tcpdump's SYN-ACK) are the client process's own clock.\n\n", usedFast, usedSlow, clientStagger.Milliseconds())
	b.WriteString("| case | pairs | fast won | release p50 | p99 | max | > 20 µs early | SYN after instant | server reported | server − tcpdump p50 / max \\|gap\\| | control reply p50 | p99 | client sees p50 | connected logged before released | server warnings | tcpdump dropped |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, u := range r.AsUsed {
		gap := "–"
		if u.ServerGap.N > 0 {
			gap = fmt.Sprintf("%s / %s", stats.FmtUS(u.ServerGap.P50US), stats.FmtUS(u.ServerGapMaxUS))
		}
		fmt.Fprintf(b, "| %s | %d | %d/%d | %s | %s | %s | %d | %d | %d/%d | %s | %s | %s | %s | %d/%d | %d | %d |\n",
			u.Label, u.Pairs, u.FastWon, u.Winners, stats.Cell(u.Release, u.Release.P50US), stats.Cell(u.Release, u.Release.P99US), stats.Cell(u.Release, u.Release.MaxUS), u.Early,
			u.SYNAfter, u.ServerReported, u.Winners, gap, stats.Cell(u.Reply, u.Reply.P50US), stats.Cell(u.Reply, u.Reply.P99US), stats.Cell(u.ClientSees, u.ClientSees.P50US),
			u.LogOrder, u.Winners, u.Problems, u.Dropped)
	}
	b.WriteString("\n")
	for _, u := range r.AsUsed {
		if u.Mode == "" && (u.ClientErrors > 0 || u.Unmatched > 0 || u.Problems > 0 || u.Other > 0) {
			fmt.Fprintf(b, "- %s: %d client errors %s; %d winners not matched in tcpdump or the log; %d server warnings %s; "+
				"%d lines of other server output.\n", u.Label, u.ClientErrors, quoteAll(u.ErrorSample), u.Unmatched, u.Problems,
				quoteAll(u.ProblemSample), u.Other)
		}
	}
	b.WriteString("The benchmark's own capture (an AF_PACKET socket in this process, which on lo sees each SYN-ACK twice: " +
		"as it is sent, then as it arrives) of the same SYN-ACKs, against tcpdump's time:\n\n")
	b.WriteString("| case | received copy − tcpdump p50 | max \\|gap\\| | sent copy − tcpdump p50 | p99 | min |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, u := range r.AsUsed {
		if u.Mode == "" {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", u.Label, stats.Cell(u.Own, u.Own.P50US), maxAbsCell(u.Own),
				stats.Cell(u.OwnSent, u.OwnSent.P50US), stats.Cell(u.OwnSent, u.OwnSent.P99US), stats.Cell(u.OwnSent, u.OwnSent.MinUS))
		}
	}
	reportLevers(b, r)
	b.WriteString("\n![CDF of the release error as it is used](cdf-used.svg)\n\n")
}

// reportLevers writes the lever rows, each beside the row of the server as
// shipped on the same load.
func reportLevers(b *strings.Builder, r *Results) {
	if len(r.Levers) == 0 {
		return
	}
	b.WriteString("\n### Levers, as it is used\n\n")
	b.WriteString("The same scenario with one of the library's levers turned off or changed, through the environment the " +
		"server reads (SYNHOLD_SPIN, SYNHOLD_REALTIME, SYNHOLD_WARM, SYNHOLD_EARLY, SYNHOLD_ENGINE_LINGER; GOGC), fewer pairs, run after the rows above. \"shipped\" is the row above of the same load; the difference " +
		"is what the lever is worth there (positive: the lever helps).\n\n")
	b.WriteString("| lever turned | pairs | release p50 | p99 | max | shipped p50 / p99 / max | control reply p50 / p99 | shipped reply p50 / p99 | server reported | server start-up |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, l := range r.Levers {
		def, _ := usedRowOf(r.AsUsed, shippedOf(l))
		fmt.Fprintf(b, "| %s (%s) | %d | %s | %s | %s | %s / %s / %s | %s / %s | %s / %s | %d/%d | %s |\n",
			l.Label, l.Note, l.Pairs, stats.Cell(l.Release, l.Release.P50US), stats.Cell(l.Release, l.Release.P99US), stats.Cell(l.Release, l.Release.MaxUS),
			stats.Cell(def.Release, def.Release.P50US), stats.Cell(def.Release, def.Release.P99US), stats.Cell(def.Release, def.Release.MaxUS), stats.Cell(l.Reply, l.Reply.P50US), stats.Cell(l.Reply, l.Reply.P99US),
			stats.Cell(def.Reply, def.Reply.P50US), stats.Cell(def.Reply, def.Reply.P99US), l.ServerReported, l.Winners, shortStart(l.ServerStart))
	}
	b.WriteString("\n")
}

// shortStart is a server's start-up fields without the sentence that
// explains the strategy.
func shortStart(fields []string) string {
	var out []string
	for _, f := range fields {
		if !strings.HasPrefix(f, "why=") {
			out = append(out, f)
		}
	}
	return strings.ReplaceAll(strings.Join(out, "; "), "|", "/")
}

// shippedOf names the row of the server as shipped on a lever row's load.
func shippedOf(l UsedRow) string {
	if l.Hogs > 0 {
		return "used/busy4"
	}
	return "used/idle"
}

// quoteAll formats a sample of messages, or nothing for none.
func quoteAll(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return "(\"" + strings.Join(ss, "\"; \"") + "\")"
}

// maxAbsCell is the largest magnitude of a Summary, or a dash.
func maxAbsCell(s stats.Summary) string {
	if s.N == 0 {
		return "–"
	}
	return stats.FmtUS(max(s.MaxUS, -s.MinUS))
}

func reportRelease(b *strings.Builder, r *ExperimentResults) {
	b.WriteString("## Handshake release accuracy, in this process\n\n")
	b.WriteString("Error of the SYN-ACK (its kernel timestamp on an AF_PACKET socket of the benchmark's own) against the " +
		"requested instant. The client is a plain non-blocking `connect(2)` on loopback, IPv4 and IPv6 alternately; " +
		"the instant is set 20-50 ms (uniform) after its SYN was sent. One listener per trial, trials one after another. " +
		"\"filter detached\" (the listener's Released event) and \"replay returned\" (its `Handshake().Released`, after the " +
		"replay's sendto(2)) are the listener's own clock readings against the instant: they split the error into wake-up and stack. " +
		"\"client sees\" is when the runtime poller reported the connect complete, against the instant. " +
		"\"library\" is the largest gap between the listener's own `Handshake().SYNACK` and the benchmark's capture.\n\n")
	releaseTable(b, r.Release)
	if len(r.Experiments) > 0 {
		b.WriteString("### Experiments: pushing toward the targets\n\n")
		b.WriteString("The same measurement (strategy Replay, timerfd clock unless named) with one knob turned.\n\n")
		releaseTable(b, r.Experiments)
	}
	if len(r.Wake) > 0 {
		reportWake(b, r.Wake)
	}
	b.WriteString("![CDF of the release error per strategy and timing path](cdf.svg)\n\n")
	if len(r.Experiments) > 0 {
		b.WriteString("![CDF of the release error in the experiments](cdf-experiments.svg)\n\n")
	}
}

func releaseTable(b *strings.Builder, rows []ReleaseRow) {
	b.WriteString("| row | strategy | clock | spin | done | p50 | p99 | max | mean | filter detached p50 | replay returned p50 | client sees p50 | library | note |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range rows {
		done := fmt.Sprintf("%d/%d", row.Completed, row.Trials)
		if row.Refused > 0 {
			done = fmt.Sprintf("refused %d/%d", row.Refused, row.Trials)
		}
		client := stats.Cell(row.Client, row.Client.P50US)
		lib := "–"
		if row.LibCompared > 0 {
			lib = fmt.Sprintf("%d compared, max gap %s", row.LibCompared, stats.FmtUS(row.LibMaxDiffUS))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Label, row.Strategy, stats.OrDash(row.Clock), spinCell(row), done, stats.Dist(row.Error),
			stats.Cell(row.Opened, row.Opened.P50US), stats.Cell(row.Replayed, row.Replayed.P50US), client, lib, row.Note)
	}
	b.WriteString("\n")
}

func spinCell(row ReleaseRow) string {
	if row.Strategy != "replay" {
		return "–"
	}
	if row.SpinUS == 0 {
		return "off"
	}
	return stats.FmtUS(row.SpinUS)
}

func reportWake(b *strings.Builder, rows []WakeRow) {
	b.WriteString("### Standalone clock: scheduling policy under load\n\n")
	b.WriteString("A copy of the listener's clock loop (timerfd at an absolute CLOCK_REALTIME instant on a locked OS thread, " +
		"timer slack 1 ns, then a spin), without the network: how late the thread resumes at the instant, by scheduling " +
		"policy of that one thread and by load. Instants 2-6 ms apart.\n\n")
	b.WriteString("| row | policy | load | n | p50 | p99 | max | mean | note |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, w := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %d | %s | %s |\n", w.Label, w.Policy, w.Load, w.Error.N, stats.Dist(w.Error), w.Note)
	}
	b.WriteString("\n")
}

func reportStamps(b *strings.Builder, rows []StampRow) {
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Timestamp accuracy for backoff measurement\n\n")
	b.WriteString("The client records `time.Now()` right before a raw non-blocking `unix.Connect`; each server timestamp " +
		"of the same attempt is compared against it (plain listener, loopback, IPv4 and IPv6 alternately).\n\n")
	b.WriteString("| timestamp | n | p50 | p99 | max | mean | min |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range rows {
		min := "–"
		if s.Delta.N > 0 {
			min = stats.FmtUS(s.Delta.MinUS)
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s |\n", s.Label, s.Delta.N, stats.Dist(s.Delta), min)
	}
	b.WriteString("\n")
	for _, s := range rows {
		if s.Impossible > 0 {
			fmt.Fprintf(b, "%s: %d sample(s) left out, the SYN's kernel time being before the client's record: the wall "+
				"clock stepped back in between (see the clock steps above).\n\n", s.Label, s.Impossible)
		}
	}
}

func reportScale(b *strings.Builder, rows []ScaleRow) {
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Scale: Happy Eyeballs pairs requested at once\n\n")
	b.WriteString("`happyeyeballs.Server` in this process, control listener on 127.0.0.1:0, fast 300 ms / slow 600 ms. " +
		"Each round sends every request at once (one control connection each), then dials both sides of every pair " +
		"before its instants. Release error: the fast side's SYN-ACK as it arrived (benchmark's capture) against the " +
		"instant the broker's `connected` line gives for it (`want`); the slow side never completes, " +
		"since the pair closes when the fast side wins. Rounds follow one another at once, as a driver's requests do. Peak is " +
		"sampled with every pair open and every client dialed; \"after\" once the server shut down.\n\n")
	scaleTable(b, rows)
	scaleNotes(b, rows)
}

// reportScaleKnobs writes the scale rows with one knob turned, and what the
// control path costs.
func reportScaleKnobs(b *strings.Builder, r *ExperimentResults) {
	if len(r.ScaleExperiments) > 0 {
		b.WriteString("## Scale, one knob turned\n\n")
		b.WriteString("Pairs requested at once as in report.md's scale rows. The knobs at the largest count ran round by round in " +
			"turn with its default (same server), so that all saw the same background; \"" + scaleKeepLabel + "\" ran on its own, " +
			"with another listener open throughout.\n\n")
		scaleTable(b, r.ScaleExperiments)
		scaleNotes(b, r.ScaleExperiments)
	}
	if len(r.ListenCost) > 0 {
		reportCost(b, r.ListenCost)
	}
}

// scaleNotes lists the scale rows that lost or mistook a pair.
func scaleNotes(b *strings.Builder, rows []ScaleRow) {
	for _, s := range rows {
		if s.SYNAfter > 0 || s.LogProblems > 0 || s.FDLeak > 0 || s.NoByte > 0 || s.Unseen > 0 {
			fmt.Fprintf(b, "- %d pairs, %s: %d SYNs after the instant, %d broker warnings, descriptor leak %d; %d fast sides "+
				"connected and were closed without their byte (the broker took another connection of the pair as the winner); "+
				"%d connected but the benchmark's capture missed their SYN-ACK (left out).\n",
				s.Pairs, s.Variant, s.SYNAfter, s.LogProblems, s.FDLeak, s.NoByte, s.Unseen)
		}
	}
	b.WriteString("\n")
}

func scaleTable(b *strings.Builder, rows []ScaleRow) {
	b.WriteString("| pairs | variant | rounds | replies | reply p50 | reply p99 | do-nothing server's reply p99 | req/s | release p50 | release p99 | release max | broker's own p99 | won by fast family | FDs base / peak / after | Go heap peak / after | RSS peak / after / HWM |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range rows {
		fmt.Fprintf(b, "| %d | %s | %d | %d/%d | %s | %s | %s | %.0f | %s | %s | %s | %s | %d/%d | %d / %d / %d | %.1f / %.1f MiB | %.1f / %.1f / %.1f MiB |\n",
			s.Pairs, s.Variant, s.Rounds, s.ReplyOK, s.Requests, stats.FmtUS(s.Reply.P50US), stats.FmtUS(s.Reply.P99US), stats.Cell(s.ReplyFloor, s.ReplyFloor.P99US), s.RequestsPerSec,
			stats.FmtUS(s.Release.P50US), stats.FmtUS(s.Release.P99US), stats.FmtUS(s.Release.MaxUS), brokerCell(s),
			s.Connected-s.WrongFamily-s.NoByte, s.ReplyOK, s.Baseline.FDs, s.Peak.FDs, s.After.FDs,
			s.Peak.HeapMB, s.After.HeapMB, s.Peak.RSSMB, s.After.RSSMB, s.After.HWMMB)
	}
	b.WriteString("\n")
}

// brokerCell is the broker's own release p99, and how many fast sides it
// logged a SYN-ACK for.
func brokerCell(s ScaleRow) string {
	if s.BrokerLate.N == 0 {
		return fmt.Sprintf("– (0/%d logged)", s.Connected)
	}
	return fmt.Sprintf("%s (%d/%d logged)", stats.FmtUS(s.BrokerLate.P99US), s.BrokerLate.N, s.Connected)
}

func reportCost(b *strings.Builder, rows []CostRow) {
	b.WriteString("### What the control path costs\n\n")
	b.WriteString("Wall time per call, one call at a time (IPv4), except the last row. A pair opens two listeners, so this " +
		"bounds how fast the control port answers many requests at once.\n\n")
	b.WriteString("| operation | n | p50 | p99 | max | mean | note |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range rows {
		fmt.Fprintf(b, "| %s | %d | %s | %s |\n", c.Label, c.Cost.N, stats.Dist(c.Cost), c.Note)
	}
	b.WriteString("\n")
}

func reportDescriptors(b *strings.Builder, d FDCheck) {
	verdict := "back to the baseline"
	if d.Leaked {
		verdict = "**LEAKED**"
	}
	fmt.Fprintf(b, "\n## Descriptors\n\nOpen descriptors at the start %d, at the end %d: %s.\n", d.Start, d.End, verdict)
}
