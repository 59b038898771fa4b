package main

import (
	"fmt"
	"strings"

	"github.com/synhold/synhold/bench/internal/stats"
)

// The targets of the in-process rows, in microseconds.
const (
	targetOneP50    = 50
	targetOneP99    = 500
	targetCaptureUS = 100
)

// defaultPath is the name of the release row of the library's default
// timing path (timerfd + spin).
const defaultPath = "replay/timerfd+spin"

// judgeExperiments compares the experiments' figures with their targets
// and draws their findings.
func judgeExperiments(r *ExperimentResults) ([]Target, []string) {
	def, _ := releaseRow(r.Release, defaultPath)
	syn, _ := find(r.Stamps, func(s StampRow) bool { return s.Name == "syn-capture" })
	ts := []Target{
		atMost("Replay, one pair, release error p50 (timerfd + spin)", def.Error.P50US, def.Error.N, targetOneP50),
		atMost("Replay, one pair, release error p99 (timerfd + spin)", def.Error.P99US, def.Error.N, targetOneP99),
		atMost("SYN capture − client record, p99", syn.Delta.P99US, syn.Delta.N, targetCaptureUS),
		descriptorTarget(r.Descriptors),
	}
	left := 0
	for _, s := range r.Stamps {
		left += s.Impossible
	}
	var fs []string
	fs = append(fs, loadFinding(r.Machine)...)
	fs = append(fs, clockStepFinding(r.Machine.ClockSteps, left)...)
	fs = append(fs, ingredientFindings(r.Release)...)
	fs = append(fs, bareFindings(r)...)
	fs = append(fs, loadedFindings(r.Experiments)...)
	fs = append(fs, experimentFindings(r)...)
	fs = append(fs, otherReleaseFindings(r.Release)...)
	fs = append(fs, wakeFindings(r.Wake)...)
	fs = append(fs, stampFindings(r.Stamps)...)
	fs = append(fs, scaleExperimentFindings(r.ScaleExperiments)...)
	fs = append(fs, costFindings(r.ListenCost)...)
	return ts, fs
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

func experimentFindings(r *ExperimentResults) []string {
	def, ok := releaseRow(r.Release, defaultPath)
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
func bareFindings(r *ExperimentResults) []string {
	def, ok1 := releaseRow(r.Release, defaultPath)
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

// costRow returns the listen cost row named name.
func costRow(rows []CostRow, name string) (CostRow, bool) {
	return find(rows, func(row CostRow) bool { return row.Name == name })
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
