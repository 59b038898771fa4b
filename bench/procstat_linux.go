package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/synhold/synhold/bench/internal/proc"
	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/tune"
	"golang.org/x/sys/unix"
)

// raiseNoFile raises RLIMIT_NOFILE's soft limit to the hard limit: 500
// pairs hold about 2,000 descriptors at once.
func raiseNoFile() (Rlimit, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return Rlimit{}, fmt.Errorf("getrlimit: %w", err)
	}
	r := Rlimit{SoftBefore: lim.Cur, Hard: lim.Max}
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return r, fmt.Errorf("setrlimit: %w", err)
	}
	r.Soft = lim.Cur
	return r, nil
}

// fdCount counts the process's open descriptors (less the one reading the
// directory).
func fdCount() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	return len(ents) - 1, nil
}

// memPoint samples descriptors, the Go heap (runtime/metrics, which does not
// stop the world) and VmRSS/VmHWM.
func memPoint() (MemPoint, error) {
	fds, err := fdCount()
	if err != nil {
		return MemPoint{}, err
	}
	rss, hwm, err := proc.Memory(0)
	if err != nil {
		return MemPoint{}, err
	}
	return MemPoint{FDs: fds, HeapMB: stats.MB(heapBytes()), RSSMB: stats.MB(rss), HWMMB: stats.MB(hwm)}, nil
}

// heapBytes is the memory of the Go heap's objects, live or not yet swept.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// settleFDs waits up to limit for the descriptor count to come back to
// want, and returns the last count.
func settleFDs(want int, limit time.Duration) (int, error) {
	end := time.Now().Add(limit)
	for {
		tune.CloseIdleEngines() // a capture engine outlives its last listener by seconds
		// io.Copy between TCP connections splices through pipes that the
		// runtime keeps in a sync.Pool and closes only when a GC empties
		// it (two GCs: the pool's victim cache) and their finalizers run.
		runtime.GC()
		runtime.GC()
		n, err := fdCount()
		if err != nil || n <= want || time.Now().After(end) {
			return n, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
