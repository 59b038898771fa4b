package main

import (
	"fmt"
	"log/slog"
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
// release.
func logClock(logger *slog.Logger) {
	st, ok := releaseclock.Current()
	if !ok || st.Fired == 0 {
		return
	}
	logger.Info("release clock", "releases", st.Fired, "wakeups", st.Batches,
		"cpu_per_release_us", float64(st.CPU/time.Nanosecond)/float64(st.Fired)/1e3,
		"warmups", st.Prepared, "warmups_skipped", st.Skipped, "thread", st.TID)
}
