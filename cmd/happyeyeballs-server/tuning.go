package main

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/metrics"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/tune"
)

// applyTuning sets the tuning of the listener's machinery from the
// environment (tune.FromEnv: SYNHOLD_SPIN, SYNHOLD_REALTIME, SYNHOLD_WARM,
// SYNHOLD_EARLY, SYNHOLD_ENGINE_LINGER), before any listener opens. Unset,
// the machinery is as shipped.
func applyTuning(getenv func(string) string) error {
	c, err := tune.FromEnv(tune.Default(), getenv)
	if err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	tune.Set(c)
	return nil
}

// logClock writes what the release clock did while the server ran: the
// releases it fired, in how many wake-ups, and its thread's CPU time per
// release, and the share of its batches' wall time it was on its CPU
// (below 100: preempted, or waiting for a P, during a batch).
func logClock(logger *slog.Logger) {
	st, ok := releaseclock.Current()
	if !ok || st.Fired == 0 {
		return
	}
	onCPU := 100.0
	if st.Busy > 0 {
		onCPU = min(100, 100*float64(st.CPU)/float64(st.Busy))
	}
	logger.Info("release clock", "releases", st.Fired, "wakeups", st.Batches,
		"cpu_per_release_us", float64(st.CPU/time.Nanosecond)/float64(st.Fired)/1e3,
		"on_cpu_pct", math.Round(onCPU*10)/10,
		"warmups", st.Prepared, "warmups_skipped", st.Skipped, "thread", st.TID)
}

// gcPercent is the garbage collector's target the process runs with
// (GOGC; -1 when off), for the start-up line.
func gcPercent() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	if v := s[0].Value.Uint64(); v != math.MaxUint64 {
		return int64(v)
	}
	return -1
}
