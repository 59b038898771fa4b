package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/releaseclock"
)

// wakeRows runs the standalone clock experiment: the listener's wait loop
// (timerfd at an absolute instant on a locked thread, timer slack 1 ns, then
// a spin), its thread under SCHED_OTHER or SCHED_FIFO, on the machine as it
// is and with every P of the process kept busy by goroutines.
func wakeRows(samples int) ([]WakeRow, error) {
	var rows []WakeRow
	for _, load := range []wakeLoad{loadNone, loadProcs, loadGoroutines} {
		for _, fifo := range []bool{false, true} {
			row, err := wakeRow(samples, fifo, load)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
			progress("  %-52s p50 %9s  p99 %9s  max %9s", row.Label, stats.FmtUS(row.Error.P50US), stats.FmtUS(row.Error.P99US), stats.FmtUS(row.Error.MaxUS))
		}
	}
	return rows, nil
}

// start starts the load and returns its description and what stops it.
func (l wakeLoad) start() (string, func() error, error) {
	switch l {
	case loadProcs:
		h, err := startHogs(loadHogs())
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("+ %d busy processes", loadHogs()), h.stop, nil
	case loadGoroutines:
		n := runtime.GOMAXPROCS(0)
		stop := busyGoroutines(n)
		return fmt.Sprintf("+ %d busy goroutines (every P)", n), func() error { stop(); return nil }, nil
	}
	return "machine as is", func() error { return nil }, nil
}

// wakeRow measures one policy under one load.
func wakeRow(samples int, fifo bool, load wakeLoad) (WakeRow, error) {
	desc, stop, err := load.start()
	if err != nil {
		return WakeRow{}, err
	}
	w := WakeRow{Policy: "SCHED_OTHER", Load: desc}
	if fifo {
		w.Policy = "SCHED_FIFO 10"
	}
	w.Name = fmt.Sprintf("wake/%s/%d", map[bool]string{false: "other", true: "fifo"}[fifo], load)
	w.Label = w.Policy + ", " + w.Load
	lates, werr := wakeLoop(samples, fifo)
	if err := stop(); err != nil {
		return w, err
	}
	if werr != nil {
		w.Note = werr.Error()
		return w, nil
	}
	w.Error, w.SamplesUS = stats.Summarize(lates), stats.SamplesUS(lates)
	return w, nil
}

// busyGoroutines starts n goroutines that spin until the returned function
// is called.
func busyGoroutines(n int) (stop func()) {
	var quit atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for !quit.Load() {
			}
		})
	}
	return func() {
		quit.Store(true)
		wg.Wait()
	}
}

// wakeLoop runs the clock loop on a thread of its own, which it ends (the
// goroutine exits locked), so that a real-time policy never leaks into the
// runtime's threads. It returns how late each instant was met.
func wakeLoop(samples int, fifo bool) ([]time.Duration, error) {
	type result struct {
		lates []time.Duration
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		lates, err := wakeThread(samples, fifo)
		ch <- result{lates, err}
	}()
	r := <-ch
	return r.lates, r.err
}

// prepareThread prepares the calling locked thread as the clock thread is
// (timer slack 1 ns), under SCHED_FIFO if fifo.
func prepareThread(fifo bool) (string, error) {
	return releaseclock.PrepareThread(fifo)
}

// wakeThread is the body of wakeLoop, on the locked thread.
func wakeThread(samples int, fifo bool) ([]time.Duration, error) {
	if _, err := prepareThread(fifo); err != nil && fifo {
		return nil, err
	}
	sl, err := releaseclock.NewSleeper()
	if err != nil {
		return nil, err
	}
	defer sl.Close()
	lates := make([]time.Duration, 0, samples)
	for range samples {
		at := time.Now().Add(2*time.Millisecond + rand.N(4*time.Millisecond))
		now, err := sl.Wait(at, defaultSpin)
		if err != nil {
			return nil, err
		}
		lates = append(lates, now.Sub(at))
	}
	return lates, nil
}
