package main

// Under load: the default path and the release by hand, with and without
// SCHED_FIFO, while busy processes load every core.

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/synhold/synhold/internal/releaseclock"
)

// loadHogs is how many busy processes load the machine in the experiments
// under load: two per core, as found on this kind of CI host.
func loadHogs() int { return 2 * runtime.NumCPU() }

// releaseLoaded runs the library's default path, the release by hand and
// the release by hand with SCHED_FIFO, interleaved, while busy processes
// load every core.
func releaseLoaded(sn *sniffer, sz sizes, r *ExperimentResults) error {
	h, err := startHogs(loadHogs())
	if err != nil {
		return err
	}
	vs := loadedVariants()
	got, err := runVariants(sn, vs, max(2, sz.rounds/2))
	err = errors.Join(err, h.stop())
	if err != nil {
		return err
	}
	rows := variantRows(vs, got)
	for i := range rows {
		rows[i].Note = strings.TrimPrefix(rows[i].Note+fmt.Sprintf("; %d busy processes", loadHogs()), "; ")
	}
	r.Experiments = append(r.Experiments, rows...)
	logRows(rows)
	return nil
}

// loadedVariants compare the library with the release by hand, and
// SCHED_FIFO, on a machine kept busy by other processes.
func loadedVariants() []variant {
	return []variant{
		{name: "loaded/library", label: "Library default (timerfd + spin), under load", clock: releaseclock.TimerFD, spin: defaultSpin, every: 1},
		{name: "loaded/bare", label: "by hand: detach, replay, under load", bare: &bareMode{}, every: 1, clock: releaseclock.TimerFD, spin: defaultSpin},
		{name: "loaded/bare-fifo", label: "by hand: SCHED_FIFO clock thread, under load", bare: &bareMode{fifo: true}, every: 1,
			clock: releaseclock.TimerFD, spin: defaultSpin},
	}
}
