package main

import (
	"fmt"
	"strings"

	"github.com/synhold/synhold/bench/internal/stats"
)

// The targets of the "as it is used" scenario, in microseconds.
const (
	targetIdleP50   = 35
	targetIdleP99   = 300
	targetIdleMax   = 1000
	targetBusyP99   = 1000
	targetBusyMax   = 2000
	targetUsedReply = 1000
	targetServerGap = 20
)

// The targets of the in-process rows, in microseconds.
const (
	targetOneP50    = 50
	targetOneP99    = 500
	targetScaleP99  = 2000
	targetReplyP99  = 20000
	targetCaptureUS = 100
	targetPairs     = 500
)

// judge compares the figures with the targets and draws the findings.
func judge(r *Results) ([]Target, []string) {
	return targets(r), findings(r)
}

// releaseRow returns the row named name of rows.
func releaseRow(rows []ReleaseRow, name string) (ReleaseRow, bool) {
	for _, row := range rows {
		if row.Name == name {
			return row, true
		}
	}
	return ReleaseRow{}, false
}

// scaleTarget returns the scale row the targets judge: 500 pairs, or the
// largest count run.
func scaleTarget(rows []ScaleRow) (ScaleRow, bool) {
	var best ScaleRow
	for _, s := range rows {
		if s.Pairs == targetPairs {
			return s, true
		}
		if s.Pairs > best.Pairs {
			best = s
		}
	}
	return best, best.Pairs > 0
}

// atMost is the target that a figure of n samples be at most limit µs,
// with how far it is from the limit.
func atMost(name string, got float64, n int, limit float64) Target {
	t := Target{Name: name, Want: "≤ " + stats.FmtUS(limit), Got: "not measured"}
	if n > 0 {
		t.Got, t.Met = stats.FmtUS(got), got <= limit
		t.By = margin(got, limit)
	}
	return t
}

// margin says by how much got meets or misses limit.
func margin(got, limit float64) string {
	if got <= limit {
		return stats.FmtUS(limit-got) + " to spare"
	}
	return fmt.Sprintf("missed by %s (%.1f×)", stats.FmtUS(got-limit), got/limit)
}

// usedRowOf returns the "as it is used" row named name.
func usedRowOf(rows []UsedRow, name string) (UsedRow, bool) {
	for _, row := range rows {
		if row.Name == name {
			return row, true
		}
	}
	return UsedRow{}, false
}

// usedTargets judge the "as it is used" rows of the two main cases.
func usedTargets(r *Results) []Target {
	var ts []Target
	idle, ok1 := usedRowOf(r.AsUsed, "used/idle")
	busy, ok2 := usedRowOf(r.AsUsed, "used/busy4")
	if !ok1 && !ok2 {
		return nil
	}
	ts = append(ts,
		atMost("as used, machine as it is: release error p50", idle.Release.P50US, idle.Release.N, targetIdleP50),
		atMost("as used, machine as it is: release error p99", idle.Release.P99US, idle.Release.N, targetIdleP99),
		atMost("as used, machine as it is: release error max", idle.Release.MaxUS, idle.Release.N, targetIdleMax),
		atMost("as used, 4 busy processes, server as root: release error p99", busy.Release.P99US, busy.Release.N, targetBusyP99),
		atMost("as used, 4 busy processes, server as root: release error max", busy.Release.MaxUS, busy.Release.N, targetBusyMax),
		atMost("as used, machine as it is: control reply p99", idle.Reply.P99US, idle.Reply.N, targetUsedReply),
		atMost("as used, 4 busy processes: control reply p99", busy.Reply.P99US, busy.Reply.N, targetUsedReply))
	for _, row := range []UsedRow{idle, busy} {
		if row.Name == "" {
			continue
		}
		t := Target{Name: "as used, " + row.Label + ": winners' SYN-ACK reported by the server", Want: "every one",
			Got: fmt.Sprintf("%d of %d", row.ServerReported, row.Winners), Met: row.Winners > 0 && row.ServerReported == row.Winners}
		if !t.Met {
			t.By = fmt.Sprintf("%d missing", row.Winners-row.ServerReported)
		}
		ts = append(ts, t)
		g := atMost("as used, "+row.Label+": server's SYN-ACK time − tcpdump's, largest gap", row.ServerGapMaxUS, row.ServerGap.N, targetServerGap)
		ts = append(ts, g)
		e := Target{Name: "as used, " + row.Label + ": handshakes completed > 20 µs before the instant", Want: "none",
			Got: fmt.Sprintf("%d of %d", row.Early, row.Release.N), Met: row.Early == 0 && row.Release.N > 0}
		if row.Release.N == 0 {
			e.Got = "not measured"
		}
		ts = append(ts, e)
	}
	return ts
}

func targets(r *Results) []Target {
	ts := usedTargets(r)
	atMost := func(name string, got float64, n int, limit float64) { ts = append(ts, atMost(name, got, n, limit)) }
	def, _ := releaseRow(r.Release, "replay/timerfd+spin")
	atMost("Replay, one pair, release error p50 (timerfd + spin)", def.Error.P50US, def.Error.N, targetOneP50)
	atMost("Replay, one pair, release error p99 (timerfd + spin)", def.Error.P99US, def.Error.N, targetOneP99)
	s, _ := scaleTarget(r.Scale)
	pairs := fmt.Sprintf("%d pairs", s.Pairs)
	if s.Pairs != targetPairs {
		pairs = fmt.Sprintf("%d pairs (500 not run)", s.Pairs)
	}
	atMost(pairs+", release error p99", s.Release.P99US, s.Release.N, targetScaleP99)
	atMost(pairs+", control reply p99", s.Reply.P99US, s.Reply.N, targetReplyP99)
	var syn StampRow
	for _, st := range r.Stamps {
		if st.Name == "syn-capture" {
			syn = st
		}
	}
	atMost("SYN capture − client record, p99", syn.Delta.P99US, syn.Delta.N, targetCaptureUS)
	ts = append(ts, manyTargets(r)...)
	ts = append(ts, Target{Name: "descriptors after everything closed", Want: "back to the baseline",
		Got: fmt.Sprintf("%d → %d", r.Descriptors.Start, r.Descriptors.End), Met: !r.Descriptors.Leaked})
	return ts
}

// p50p99 formats a distribution's median and tail.
func p50p99(s stats.Summary) string {
	return fmt.Sprintf("p50 %s / p99 %s", stats.FmtUS(s.P50US), stats.FmtUS(s.P99US))
}

func findings(r *Results) []string {
	var fs []string
	fs = append(fs, loadFinding(r.Machine)...)
	fs = append(fs, usedFindings(r)...)
	fs = append(fs, manyFindings(r)...)
	fs = append(fs, leverFindings(r)...)
	fs = append(fs, clockStepFinding(r)...)
	fs = append(fs, ingredientFindings(r.Release)...)
	fs = append(fs, bareFindings(r)...)
	fs = append(fs, loadedFindings(r.Experiments)...)
	fs = append(fs, experimentFindings(r)...)
	fs = append(fs, otherReleaseFindings(r.Release)...)
	fs = append(fs, wakeFindings(r.Wake)...)
	fs = append(fs, stampFindings(r.Stamps)...)
	fs = append(fs, scaleFindings(r.Scale)...)
	fs = append(fs, scaleExperimentFindings(r.ScaleExperiments)...)
	fs = append(fs, costFindings(r.ListenCost)...)
	return fs
}

// usedFindings state what the "as it is used" rows show: the release and
// the control reply per case, how it compares with the warm loop, how
// complete and true the server's own figures are.
func usedFindings(r *Results) []string {
	var out []string
	def, hasDef := releaseRow(r.Release, "replay/timerfd+spin")
	for _, u := range r.AsUsed {
		if u.Mode != "" || u.Release.N == 0 {
			continue
		}
		f := fmt.Sprintf("As used, %s (%d pairs, the fast family won %d of %d): release error %s, max %s; control reply %s.",
			u.Label, u.Pairs, u.FastWon, u.Winners, p50p99(u.Release), stats.FmtUS(u.Release.MaxUS), p50p99(u.Reply))
		var modes []string
		for _, m := range r.AsUsed {
			if m.Name != u.Name && strings.HasPrefix(m.Name, u.Name+"/") && m.Release.N > 0 {
				modes = append(modes, fmt.Sprintf("%s %s, max %s", m.Mode, p50p99(m.Release), stats.FmtUS(m.Release.MaxUS)))
			}
		}
		if len(modes) > 0 {
			f += " By dial mode: " + strings.Join(modes, "; ") + "."
		}
		if hasDef && def.Error.N > 0 && u.Hogs == 0 {
			f += fmt.Sprintf(" The warm loop in this process (section 1): %s, max %s.", p50p99(def.Error), stats.FmtUS(def.Error.MaxUS))
		}
		if u.SYNAfter > 0 {
			f += fmt.Sprintf(" %d winners' SYNs reached the server at or after the instant and are left out.", u.SYNAfter)
		}
		if u.Early > 0 {
			f += fmt.Sprintf(" %d handshakes completed more than 20 µs before their instant (earliest %s).", u.Early, stats.FmtUS(u.Release.MinUS))
		}
		out = append(out, f)
		g := fmt.Sprintf("The server reported the winner's SYN-ACK for %d of %d pairs (%s).", u.ServerReported, u.Winners, u.Label)
		if u.ServerGap.N > 0 {
			g += fmt.Sprintf(" Its time minus tcpdump's: p50 %s, largest gap %s.", stats.FmtUS(u.ServerGap.P50US), stats.FmtUS(u.ServerGapMaxUS))
		}
		if u.Own.N > 0 && u.OwnSent.N > 0 {
			g += fmt.Sprintf(" The benchmark's own capture of the same SYN-ACK: as it arrives %s from tcpdump's time (p50), "+
				"as it is sent %s (p50; p99 %s).", stats.FmtUS(u.Own.P50US), stats.FmtUS(u.OwnSent.P50US), stats.FmtUS(u.OwnSent.P99US))
		}
		if u.Winners > 0 {
			g += fmt.Sprintf(" \"connected\" was logged before the side's \"released\" for %d of %d winners.", u.LogOrder, u.Winners)
		}
		out = append(out, g)
	}
	return out
}

// leverFindings say what each lever was worth as it is used: the row with
// the lever turned against the server as shipped on the same load.
func leverFindings(r *Results) []string {
	var parts []string
	for _, l := range r.Levers {
		def, ok := usedRowOf(r.AsUsed, shippedOf(l))
		if !ok || l.Release.N == 0 || def.Release.N == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %d pairs): release %s, max %s, control reply p99 %s; as shipped %s, max %s, "+
			"control reply p99 %s", l.Label, l.Note, l.Pairs, p50p99(l.Release), stats.FmtUS(l.Release.MaxUS), stats.FmtUS(l.Reply.P99US),
			p50p99(def.Release), stats.FmtUS(def.Release.MaxUS), stats.FmtUS(def.Reply.P99US)))
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"Levers as it is used, one turned at a time against the server as shipped (with few pairs a p99 is " +
		"close to the max) — " + strings.Join(parts, "; ") + "."}
}

// clockStepFinding reports jumps of the wall clock and what they did to
// the figures.
func clockStepFinding(r *Results) []string {
	steps := r.Machine.ClockSteps
	if len(steps) == 0 {
		return nil
	}
	left := 0
	for _, s := range r.Stamps {
		left += s.Impossible
	}
	return []string{fmt.Sprintf("CLOCK_REALTIME jumped against CLOCK_MONOTONIC %d time(s) during the run (%s). Kernel packet "+
		"timestamps are wall-clock times, so a figure that compares one with time.Now() is off by the jump when the two "+
		"straddle it; %d timestamp sample(s) that came out impossible were left out. The listener's timerfd clock is "+
		"CLOCK_REALTIME too, so a release pending across a jump fires off by it.", len(steps), clockSteps(steps), left)}
}

func loadFinding(m Machine) []string {
	var out []string
	if m.TimeWaitStart > 5000 {
		out = append(out, fmt.Sprintf("%d TCP sockets were in TIME_WAIT at the start (an earlier run less than a minute "+
			"before?): they crowd the ephemeral ports, and every bind to port 0, two per pair, slows down; the scale figures "+
			"suffer. The benchmark's own clients close with a RST so as to leave none.", m.TimeWaitStart))
	}
	if len(m.Hogs) == 0 && m.IdlePct >= 50 {
		return out
	}
	return append(out, fmt.Sprintf("The machine was not idle: CPU idle %.0f%% at the start, loadavg %s, %d other busy processes "+
		"(not the benchmark's; left alone). Every figure below is under that load; tails are the scheduler's.",
		m.IdlePct, m.LoadAvg, len(m.Hogs)))
}

// ingredientFindings say which ingredient of the release clock made the
// difference: the timerfd thread, or the spin.
func ingredientFindings(rows []ReleaseRow) []string {
	rt, ok1 := releaseRow(rows, "replay/runtime")
	rts, ok2 := releaseRow(rows, "replay/runtime+spin")
	fd, ok3 := releaseRow(rows, "replay/timerfd")
	fds, ok4 := releaseRow(rows, "replay/timerfd+spin")
	if !ok1 || !ok2 || !ok3 || !ok4 || fds.Error.N == 0 {
		return nil
	}
	steps := []struct {
		what     string
		from, to stats.Summary
	}{
		{"timerfd thread instead of the runtime timer (no spin)", rt.Error, fd.Error},
		{"spin on the timerfd thread", fd.Error, fds.Error},
		{"spin on the runtime timer", rt.Error, rts.Error},
	}
	best, bestGain := "", 0.0
	var parts []string
	for _, s := range steps {
		gain := s.from.P50US - s.to.P50US
		parts = append(parts, fmt.Sprintf("%s: p50 %s → %s, p99 %s → %s", s.what,
			stats.FmtUS(s.from.P50US), stats.FmtUS(s.to.P50US), stats.FmtUS(s.from.P99US), stats.FmtUS(s.to.P99US)))
		if gain > bestGain {
			best, bestGain = s.what, gain
		}
	}
	out := []string{"Ingredients of the release clock, one at a time — " + strings.Join(parts, "; ") + "."}
	if best != "" {
		out = append(out, fmt.Sprintf("What made the difference for the median: the %s (p50 down by %s). "+
			"Default path (timerfd + spin): %s, max %s.", best, stats.FmtUS(bestGain), p50p99(fds.Error), stats.FmtUS(fds.Error.MaxUS)))
	}
	return out
}

func otherReleaseFindings(rows []ReleaseRow) []string {
	var out []string
	if b, ok := releaseRow(rows, "replay/batch"); ok && b.Error.N > 0 {
		out = append(out, fmt.Sprintf("%d releases sharing one instant, fired in one pass of the clock: %s, max %s; each further "+
			"release adds %s (median), since each replay's sendto(2) carries the SYN through the stack before the next, so the last "+
			"of %d lands about %s after the first.", b.Batch, p50p99(b.Error), stats.FmtUS(b.Error.MaxUS), stats.FmtUS(b.PerReleaseUS), b.Batch,
			stats.FmtUS(b.PerReleaseUS*float64(b.Batch-1))))
	}
	if rt, ok := releaseRow(rows, "retransmit"); ok && rt.Error.N > 0 {
		out = append(out, fmt.Sprintf("Retransmit (no CAP_NET_RAW): %s — the handshake waits for the client's next SYN "+
			"retransmission, about 1 s after its SYN, whatever the instant.", p50p99(rt.Error)))
	}
	if d, ok := releaseRow(rows, "delayed-listen"); ok {
		out = append(out, fmt.Sprintf("DelayedListen (the original server's way) on Linux: refused %d/%d clients before the "+
			"instant, %s after connect(2) (median); %d completed.", d.Refused, d.Trials, stats.FmtUS(d.Client.P50US), d.Completed))
	}
	return out
}

func experimentFindings(r *Results) []string {
	def, ok := releaseRow(r.Release, "replay/timerfd+spin")
	if !ok || len(r.Experiments) == 0 {
		return nil
	}
	parts := []string{fmt.Sprintf("default %s, max %s", p50p99(def.Error), stats.FmtUS(def.Error.MaxUS))}
	for _, e := range r.Experiments {
		if !strings.HasPrefix(e.Name, "exp/") {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s, max %s", e.Label, p50p99(e.Error), stats.FmtUS(e.Error.MaxUS)))
	}
	return []string{"Knobs on the library (interleaved with the main rows, half as many trials): " + strings.Join(parts, "; ") + "."}
}

// bareClockName is the clock column of the rows released by hand.
const bareClockName = "timerfd (by hand)"

// bareFindings compare the library's release with the same system calls
// made by hand: what the library's code adds, and what reordering the
// calls or SCHED_FIFO would give.
func bareFindings(r *Results) []string {
	def, ok1 := releaseRow(r.Release, "replay/timerfd+spin")
	hand, ok2 := releaseRow(r.Experiments, "bare/detach-send")
	if !ok1 || !ok2 || hand.Error.N == 0 || def.Error.N == 0 {
		return nil
	}
	out := []string{fmt.Sprintf("The same release made by hand (timerfd + spin on a fresh locked thread, detach, sendto; no listener "+
		"code): %s, max %s, against the library's %s, max %s. Filter detached: by hand %s after the instant, library %s; "+
		"so the library's own code adds about %s to the median.", p50p99(hand.Error), stats.FmtUS(hand.Error.MaxUS),
		p50p99(def.Error), stats.FmtUS(def.Error.MaxUS), stats.FmtUS(hand.Opened.P50US), stats.FmtUS(def.Opened.P50US),
		stats.FmtUS(def.Error.P50US-hand.Error.P50US))}
	if sf, ok := releaseRow(r.Experiments, "bare/send-detach"); ok && sf.Error.N > 0 {
		out = append(out, fmt.Sprintf("Replaying before detaching (the replay carries the mark the hold filter lets through): %s "+
			"against %s in the library's order.", p50p99(sf.Error), p50p99(hand.Error)))
	}
	if ff, ok := releaseRow(r.Experiments, "bare/fifo"); ok && ff.Error.N > 0 {
		out = append(out, fmt.Sprintf("SCHED_FIFO on the clock thread, release by hand, machine as is: %s, max %s, against %s, max %s under "+
			"SCHED_OTHER.", p50p99(ff.Error), stats.FmtUS(ff.Error.MaxUS), p50p99(hand.Error), stats.FmtUS(hand.Error.MaxUS)))
	}
	return out
}

// loadedFindings compare the release under load: library, by hand, and
// by hand under SCHED_FIFO.
func loadedFindings(rows []ReleaseRow) []string {
	lib, ok1 := releaseRow(rows, "loaded/library")
	hand, ok2 := releaseRow(rows, "loaded/bare")
	fifo, ok3 := releaseRow(rows, "loaded/bare-fifo")
	if !ok1 || !ok2 || !ok3 || fifo.Error.N == 0 {
		return nil
	}
	return []string{fmt.Sprintf("Under load (%s): library %s, max %s; by hand %s, max %s; by hand with the clock thread under "+
		"SCHED_FIFO %s, max %s. The tail under load is the scheduler's: a SCHED_OTHER clock thread waits behind the busy "+
		"processes when its timer fires.", lib.Note, p50p99(lib.Error), stats.FmtUS(lib.Error.MaxUS), p50p99(hand.Error),
		stats.FmtUS(hand.Error.MaxUS), p50p99(fifo.Error), stats.FmtUS(fifo.Error.MaxUS))}
}

func scaleExperimentFindings(rows []ScaleRow) []string {
	if len(rows) == 0 {
		return nil
	}
	var parts []string
	for _, s := range rows {
		parts = append(parts, fmt.Sprintf("%s, %s: release %s, max %s, control reply p50 %s / p99 %s", pairs(s.Pairs), s.Variant,
			p50p99(s.Release), stats.FmtUS(s.Release.MaxUS), stats.FmtUS(s.Reply.P50US), stats.FmtUS(s.Reply.P99US)))
	}
	return []string{"With one knob turned — " + strings.Join(parts, "; ") + "."}
}

// pairs says "1 pair" or "n pairs".
func pairs(n int) string {
	if n == 1 {
		return "1 pair"
	}
	return fmt.Sprintf("%d pairs", n)
}

// costRow returns the cost row named name.
func costRow(rows []CostRow, name string) (CostRow, bool) {
	for _, c := range rows {
		if c.Name == name {
			return c, true
		}
	}
	return CostRow{}, false
}

func costFindings(rows []CostRow) []string {
	warm, ok1 := costRow(rows, "listen/warm")
	hand, ok2 := costRow(rows, "listen/by-hand")
	stat, ok3 := costRow(rows, "netns-stat")
	last, ok4 := costRow(rows, "close/last")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil
	}
	return []string{fmt.Sprintf("Opening a held listener costs %s (p50) with others open, against %s for its system calls by hand; "+
		"the network-namespace lookup every Listen makes (stat of /proc/thread-self/ns/net on a locked thread) is %s of it. "+
		"A pair opens two, so 500 pairs at once take at least 1000 × that on the control path. Closing the last listener "+
		"takes %s (p50).",
		stats.FmtUS(warm.Cost.P50US), stats.FmtUS(hand.Cost.P50US), stats.FmtUS(stat.Cost.P50US), stats.FmtUS(last.Cost.P50US))}
}

func wakeFindings(rows []WakeRow) []string {
	if len(rows) == 0 {
		return nil
	}
	var parts []string
	for _, w := range rows {
		parts = append(parts, fmt.Sprintf("%s / %s: %s, max %s", w.Policy, w.Load, p50p99(w.Error), stats.FmtUS(w.Error.MaxUS)))
	}
	return []string{"Standalone clock thread (timerfd + spin, no network): " + strings.Join(parts, "; ") + "."}
}

func stampFindings(rows []StampRow) []string {
	var parts []string
	for _, s := range rows {
		part := fmt.Sprintf("%s %s, max %s", s.Label, p50p99(s.Delta), stats.FmtUS(s.Delta.MaxUS))
		if s.Impossible > 0 {
			part += fmt.Sprintf(" (%d left out: clock step)", s.Impossible)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"Timestamps of an attempt against the client's record: " + strings.Join(parts, "; ") + "."}
}

func scaleFindings(rows []ScaleRow) []string {
	var out []string
	for _, s := range rows {
		out = append(out, fmt.Sprintf("%s at once (%d rounds): control reply %s, %.0f requests/s; release %s, max %s "+
			"(broker's own figure p99 %s); peak %d descriptors, Go heap %.1f MiB, RSS %.1f MiB; after shutdown %d descriptors "+
			"(baseline %d).", pairs(s.Pairs), s.Rounds, p50p99(s.Reply), s.RequestsPerSec, p50p99(s.Release), stats.FmtUS(s.Release.MaxUS),
			stats.FmtUS(s.BrokerLate.P99US), s.Peak.FDs, s.Peak.HeapMB, s.Peak.RSSMB, s.After.FDs, s.Baseline.FDs))
	}
	return out
}

// scaleKeepLabel is the variant name of the scale run with the engine
// kept open.
const scaleKeepLabel = "engine kept open"
