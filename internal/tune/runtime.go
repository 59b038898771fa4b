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
// handshakes, where the environment (getenv) leaves it unset:
//
//   - GOMAXPROCS one more than the runtime's default (the CPUs the process
//     may use): the release clock's thread keeps a P while it waits and
//     spins before a release, and the extra P lets the rest of the process
//     (the capture's readers, the events, the server's own goroutines) keep
//     as many Ps as there are CPUs meanwhile. In process, 100 handshakes
//     released at once: SYN-ACK p99 2.1-3.8 ms with it, 3.3-4.5 ms without
//     (2 CPUs, load 5-7).
//   - GOGC GCPercent.
//
// GOMAXPROCS or GOGC in the environment wins. It returns the GOMAXPROCS
// and GOGC the process runs with, for the start-up line.
func SetServerRuntime(getenv func(string) string) (maxProcs, gcPercent int) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	gcPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	return runtime.GOMAXPROCS(0), gcPercent
}
