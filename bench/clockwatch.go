package main

import (
	"sync"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
)

// clockWatch notices jumps of the wall clock against the monotonic clock,
// by comparing the two readings time.Now() carries every few milliseconds.
type clockWatch struct {
	start     time.Time
	threshold time.Duration
	quit      chan struct{}
	done      chan struct{}

	mu    sync.Mutex
	steps []ClockStep
}

// watchClock starts watching; steps smaller than threshold are ignored.
func watchClock(every, threshold time.Duration) *clockWatch {
	w := &clockWatch{start: time.Now(), threshold: threshold, quit: make(chan struct{}), done: make(chan struct{})}
	go w.run(every)
	return w
}

// skew is how far the wall clock moved from the monotonic clock since the
// start.
func (w *clockWatch) skew(now time.Time) time.Duration {
	return now.Round(0).Sub(w.start.Round(0)) - now.Sub(w.start)
}

func (w *clockWatch) run(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	last := time.Duration(0)
	for {
		select {
		case <-w.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		sk := w.skew(now)
		if d := sk - last; d.Abs() >= w.threshold {
			w.mu.Lock()
			w.steps = append(w.steps, ClockStep{AtS: stats.Round3(now.Sub(w.start).Seconds()), StepUS: stats.US(d)})
			w.mu.Unlock()
		}
		last = sk
	}
}

// stop ends the watch and returns the steps seen.
func (w *clockWatch) stop() []ClockStep {
	close(w.quit)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.steps
}
