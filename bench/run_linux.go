package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
)

// sizes are the counts a run uses, from the options.
type sizes struct {
	rounds      int // of the timing-path trials
	batch       int // listeners released at one instant
	batches     int
	retransmit  int // clients held at once with strategy Retransmit
	delayed     int // DelayedListen trials
	stamps      int // timestamp trials
	pairSamples int // fast sides wanted per pair count: rounds = this / pairs
	pairRounds  int // rounds at least, per pair count
	wakeSamples int // per row of the standalone clock experiment
	costCalls   int // calls timed per row of the listen cost
	usedPairs   int // pairs per case of the "as it is used" scenario
	leverPairs  int // pairs per lever case
	suitePairs  int // pairs per client process of the parallel suite
}

func sizesOf(o Options) sizes {
	sz := sizesFor(o)
	if o.UsedPairs > 0 {
		sz.usedPairs = o.UsedPairs
	}
	return sz
}

func sizesFor(o Options) sizes {
	if o.Short {
		return sizes{rounds: o.Trials, batch: 10, batches: 1, retransmit: 4, delayed: 4, stamps: 50,
			pairSamples: 3, pairRounds: 1, wakeSamples: 40, costCalls: 40, usedPairs: 4, leverPairs: 2, suitePairs: 1}
	}
	return sizes{rounds: o.Trials, batch: 50, batches: 4, retransmit: 16, delayed: 20, stamps: 1000,
		pairSamples: 30, pairRounds: 6, wakeSamples: 400, costCalls: 300, usedPairs: 200, leverPairs: 30, suitePairs: 10}
}

// run runs the parts one after another into o.Out, each measured, judged,
// written and printed before the next starts.
func run(parts []part, o Options) error {
	nofile, err := raiseNoFile()
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := runPart(p, o, nofile); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

// runPart measures one part on a described machine, with the benchmark's
// own capture open, and writes its outputs.
func runPart(p part, o Options, nofile Rlimit) error {
	if len(o.Only) > 0 && !slices.ContainsFunc(p.keys, func(k string) bool { return slices.Contains(o.Only, k) }) {
		return nil // -only names none of its steps (the proxy part has none)
	}
	began := time.Now()
	fdStart, err := startFDs()
	if err != nil {
		return err
	}
	progress("%s: describing the machine", p.name)
	run := Run{Machine: describeMachine(nofile), Options: o}
	sn, err := openSniffer()
	if err != nil {
		return fmt.Errorf("capture: %w (the benchmark needs CAP_NET_RAW)", err)
	}
	cw := watchClock(10*time.Millisecond, 100*time.Microsecond)
	var w writer
	switch p.name {
	case headlinePart.name:
		w, err = measureHeadline(sn, o)
	case proxyPart.name:
		w, err = measureProxy(o)
	case experimentsPart.name:
		w, err = measureExperiments(sn, o)
	}
	run.Machine.ClockSteps = cw.stop()
	run.Machine.TimeWaitEnd = timeWaitCount()
	err = errors.Join(err, sn.close())
	if err != nil {
		return err
	}
	if run.Descriptors, err = endFDs(fdStart); err != nil {
		return err
	}
	run.ElapsedS = stats.Round3(time.Since(began).Seconds())
	md, files, err := w(run)
	fmt.Print(md)
	progress("%s: wrote %s/{%s} in %.0f s", p.name, o.Out, files, run.ElapsedS)
	if run.Descriptors.Leaked {
		err = errors.Join(err, fmt.Errorf("descriptors leaked: %d open at the start, %d at the end", run.Descriptors.Start, run.Descriptors.End))
	}
	return err
}

// A writer judges a part's figures, once its Run is complete, and writes
// its outputs into -out; it returns the report and the files' names.
type writer func(Run) (md, files string, err error)

// startFDs counts the descriptors open once the runtime's poller exists (it
// keeps its own for the life of the process).
func startFDs() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	ln.Close()
	return fdCount()
}

// endFDs compares the descriptors open now with the start.
func endFDs(start int) (FDCheck, error) {
	// 10 s: the proxy part's processes and pipes wind down after it.
	end, err := settleFDs(start, 10*time.Second)
	if err != nil {
		return FDCheck{}, err
	}
	return FDCheck{Start: start, End: end, Leaked: end > start}, nil
}

// step is one part of the measurements; key names it for -only.
type step struct {
	key, name string
	fn        func() error
}

// runSteps runs steps in order (those named in only, if it is not empty).
func runSteps(steps []step, only []string) error {
	for _, s := range steps {
		if len(only) > 0 && !slices.Contains(only, s.key) {
			continue
		}
		t := time.Now()
		progress("%s ...", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		progress("%s done in %.1f s", s.name, time.Since(t).Seconds())
	}
	return nil
}

// progress reports on stderr; stdout carries the report.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
