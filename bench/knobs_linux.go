package main

// The scale knobs: pairs requested at once again, with one knob turned
// (the release clock's spin, GOMAXPROCS, the GC; the capture engine kept
// open), beside the default of the same count.

import (
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
)

// scaleKeepEngine is the default with another listener open throughout,
// tried on the smallest pair count: each pair then finds the capture engine
// open, instead of opening it, and closing it when the pair closes.
var scaleKeepEngine = variant{label: scaleKeepLabel, clock: releaseclock.TimerFD, spin: defaultSpin, keep: true}

// scaleVariants are the knobs tried on the largest pair count.
func scaleVariants() []variant {
	procs := runtime.GOMAXPROCS(0)
	return []variant{
		{label: "spin 1 ms", clock: releaseclock.TimerFD, spin: time.Millisecond},
		{label: fmt.Sprintf("GOMAXPROCS=%d", 2*procs), clock: releaseclock.TimerFD, spin: defaultSpin, procs: 2 * procs},
		{label: "GOGC=400", clock: releaseclock.TimerFD, spin: defaultSpin, gc: 400},
		{label: "GC off", clock: releaseclock.TimerFD, spin: defaultSpin, gc: -1},
	}
}

// scaleKnobs runs the knobs on the largest pair count, round by round in
// turn with its default, then the engine kept open on the smallest.
func scaleKnobs(sn *sniffer, sz sizes, counts []int) ([]ScaleRow, error) {
	rows, err := scaleLog(sn, sz, slices.Max(counts), append([]variant{scaleDefault}, scaleVariants()...))
	if err != nil {
		return rows, err
	}
	// Not interleaved with the default: its rounds must follow one another
	// as a driver's requests do, each meeting the close of the previous
	// pair.
	keep, err := scaleLog(sn, sz, slices.Min(counts), []variant{scaleKeepEngine})
	return append(rows, keep...), err
}
