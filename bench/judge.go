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

// The targets of the pairs at once, in microseconds, and the count they
// are judged at.
const (
	targetScaleP99 = 2000
	targetReplyP99 = 20000
	targetPairs    = 500
)

// judge compares the headline's figures with their targets and draws its
// findings.
func judge(r *Results) ([]Target, []string) {
	return targets(r), findings(r)
}

// find returns the first of rows that match holds for.
func find[T any](rows []T, match func(T) bool) (T, bool) {
	for _, row := range rows {
		if match(row) {
			return row, true
		}
	}
	var zero T
	return zero, false
}

// releaseRow returns the row named name of rows.
func releaseRow(rows []ReleaseRow, name string) (ReleaseRow, bool) {
	return find(rows, func(row ReleaseRow) bool { return row.Name == name })
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
	return find(rows, func(row UsedRow) bool { return row.Name == name })
}

// usedWholeRows are the rows of all pairs of every case timed as it is used
// (section 0, the levers, the suite): a dial mode's row is part of its
// case's, so it is left out.
func usedWholeRows(r *Results) []UsedRow {
	var rows []UsedRow
	for _, rs := range [][]UsedRow{r.AsUsed, r.Levers, r.Suite} {
		for _, u := range rs {
			if u.Mode == "" {
				rows = append(rows, u)
			}
		}
	}
	return rows
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

// targets judge the headline: as used, pairs at once, the pools and the
// suite, and the descriptors.
func targets(r *Results) []Target {
	ts := usedTargets(r)
	s, _ := scaleTarget(r.Scale)
	pairs := fmt.Sprintf("%d pairs", s.Pairs)
	if s.Pairs != targetPairs {
		pairs = fmt.Sprintf("%d pairs (500 not run)", s.Pairs)
	}
	ts = append(ts, atMost(pairs+", release error p99", s.Release.P99US, s.Release.N, targetScaleP99),
		atMost(pairs+", control reply p99", s.Reply.P99US, s.Reply.N, targetReplyP99))
	ts = append(ts, manyTargets(r)...)
	return append(ts, descriptorTarget(r.Descriptors))
}

// descriptorTarget is the target that every descriptor a part opened be
// closed at its end.
func descriptorTarget(d FDCheck) Target {
	return Target{Name: "descriptors after everything closed", Want: "back to the baseline",
		Got: fmt.Sprintf("%d → %d", d.Start, d.End), Met: !d.Leaked}
}

// p50p99 formats a distribution's median and tail.
func p50p99(s stats.Summary) string {
	return fmt.Sprintf("p50 %s / p99 %s", stats.FmtUS(s.P50US), stats.FmtUS(s.P99US))
}

func findings(r *Results) []string {
	var fs []string
	fs = append(fs, loadFinding(r.Machine)...)
	fs = append(fs, clockStepFinding(r.Machine.ClockSteps, 0)...)
	fs = append(fs, usedFindings(r)...)
	fs = append(fs, leverFindings(r)...)
	fs = append(fs, scaleFindings(r.Scale)...)
	fs = append(fs, manyFindings(r)...)
	return fs
}

// usedFindings state what the "as it is used" rows show: the release and
// the control reply per case, how complete and true the server's own
// figures are.
func usedFindings(r *Results) []string {
	var out []string
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
// left counts the timestamp samples left out as impossible.
func clockStepFinding(steps []ClockStep, left int) []string {
	if len(steps) == 0 {
		return nil
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

// pairs says "1 pair" or "n pairs".
func pairs(n int) string {
	if n == 1 {
		return "1 pair"
	}
	return fmt.Sprintf("%d pairs", n)
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
