package main

// The timing paths: strategy Replay with each ingredient of the release
// clock (timerfd or the runtime's timer, the spin) on and off, and the
// knobs of the default path (the GC, GOMAXPROCS), in one process.

import (
	"fmt"
	"runtime"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/releaseclock"
)

// releasePaths runs the timing paths of strategy Replay, the knobs of the
// default path and the release by hand, interleaved.
func releasePaths(sn *sniffer, sz sizes, r *ExperimentResults) error {
	main := mainVariants()
	exps := append(experimentVariants(), bareVariants()...)
	got, err := runVariants(sn, append(main, exps...), sz.rounds)
	if err != nil {
		return err
	}
	r.Release = append(r.Release, variantRows(main, got)...)
	r.Experiments = variantRows(exps, got)
	logRows(append(r.Release, r.Experiments...))
	return nil
}

// logRows reports release rows on stderr.
func logRows(rows []ReleaseRow) {
	for _, row := range rows {
		progress("  %-52s p50 %9s  p99 %9s  max %9s", row.Label, stats.FmtUS(row.Error.P50US), stats.FmtUS(row.Error.P99US), stats.FmtUS(row.Error.MaxUS))
	}
}

// mainVariants are the rows of section 1 for strategy Replay: each
// ingredient of the clock on and off.
func mainVariants() []variant {
	return []variant{
		{name: "replay/runtime", label: "Replay, runtime timer, no spin", clock: releaseclock.RuntimeTimer, every: 1},
		{name: "replay/runtime+spin", label: "Replay, runtime timer + spin", clock: releaseclock.RuntimeTimer, spin: defaultSpin, every: 1},
		{name: "replay/timerfd", label: "Replay, timerfd, no spin", clock: releaseclock.TimerFD, every: 1},
		{name: "replay/timerfd+spin", label: "Replay, timerfd + spin (default)", clock: releaseclock.TimerFD, spin: defaultSpin, every: 1},
	}
}

// experimentVariants turn one knob of the default path each; they run in
// every other round.
func experimentVariants() []variant {
	procs := runtime.GOMAXPROCS(0)
	return []variant{
		{name: "exp/gc-off", label: "timerfd + spin, GC off during the trial", clock: releaseclock.TimerFD, spin: defaultSpin, gc: -1, every: 2,
			note: "debug.SetGCPercent(-1)"},
		{name: "exp/spin-1ms", label: "timerfd + spin 1 ms", clock: releaseclock.TimerFD, spin: time.Millisecond, every: 2},
		{name: "exp/spin-50us", label: "timerfd + spin 50 µs", clock: releaseclock.TimerFD, spin: 50 * time.Microsecond, every: 2},
		{name: "exp/procs-1", label: "timerfd + spin, GOMAXPROCS=1", clock: releaseclock.TimerFD, spin: defaultSpin, procs: 1, every: 2},
		{name: "exp/procs-x2", label: fmt.Sprintf("timerfd + spin, GOMAXPROCS=%d", 2*procs), clock: releaseclock.TimerFD, spin: defaultSpin, procs: 2 * procs, every: 2},
	}
}
