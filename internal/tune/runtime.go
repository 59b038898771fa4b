package tune

import (
	"runtime"
	"runtime/debug"
)

// GCPercent is the garbage collector's target a server that releases
// handshakes runs with (GOGC 400): at 500 pairs at once the collector was
// the release tail (bench: release p99 14.6 ms with GOGC=100, 2.0 ms with
// 400), and the heap at that scale is tens of MiB.
const GCPercent = 400

// SetServerRuntime sets the Go runtime for a server binary that releases
// handshakes, where the environment (getenv) leaves it unset: GOGC
// GCPercent. GOMAXPROCS stays the runtime's default (the CPUs the process
// may use). One P more than the CPUs was tried: in process it helped 100
// handshakes released at once (SYN-ACK p99 2.1-3.8 ms against 3.3-4.5 ms),
// but as used it cost the lone pair its tail (bench -only used, 60 pairs,
// the same idle 2-core VM, back to back: release max 1.65 ms with a P more,
// 80 µs without; the full run with it, p99 1.45 ms over 200 pairs), and the
// lone pair is what a driver's test suite meets.
//
// GOGC in the environment wins. It returns the GOMAXPROCS and GOGC the
// process runs with, for the start-up line.
func SetServerRuntime(getenv func(string) string) (maxProcs, gcPercent int) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	gcPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	return runtime.GOMAXPROCS(0), gcPercent
}
