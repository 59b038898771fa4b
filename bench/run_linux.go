package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"

	"github.com/synhold/synhold/bench/internal/proxybench"
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
	experiments bool
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
			pairSamples: 3, pairRounds: 1, wakeSamples: 40, costCalls: 40, usedPairs: 4, leverPairs: 2, suitePairs: 1, experiments: o.Extra}
	}
	return sizes{rounds: o.Trials, batch: 50, batches: 4, retransmit: 16, delayed: 20, stamps: 1000,
		pairSamples: 30, pairRounds: 6, wakeSamples: 400, costCalls: 300, usedPairs: 200, leverPairs: 30, suitePairs: 10, experiments: o.Extra}
}

// run measures everything, writes the outputs and prints the report.
func run(o Options) error {
	began := time.Now()
	nofile, err := raiseNoFile()
	if err != nil {
		return err
	}
	fdStart, err := startFDs()
	if err != nil {
		return err
	}
	r := &Results{Options: o}
	progress("describing the machine")
	r.Machine = describeMachine(nofile)
	sn, err := openSniffer()
	if err != nil {
		return fmt.Errorf("capture: %w (the benchmark needs CAP_NET_RAW)", err)
	}
	cw := watchClock(10*time.Millisecond, 100*time.Microsecond)
	err = measureAll(sn, sizesOf(o), o.Only, r)
	r.Machine.ClockSteps = cw.stop()
	r.Machine.TimeWaitEnd = timeWaitCount()
	err = errors.Join(err, sn.close())
	if err != nil {
		return err
	}
	if r.Descriptors, err = endFDs(fdStart); err != nil {
		return err
	}
	r.Targets, r.Findings = judge(r)
	r.ElapsedS = stats.Round3(time.Since(began).Seconds())
	md, err := writeOutputs(o.Out, r)
	if err != nil {
		return err
	}
	fmt.Print(md)
	progress("wrote %s/{report.md,results.json,cdf.svg,cdf-used.svg,cdf-experiments.svg} in %.0f s", o.Out, r.ElapsedS)
	if r.Descriptors.Leaked {
		return fmt.Errorf("descriptors leaked: %d open at the start, %d at the end", r.Descriptors.Start, r.Descriptors.End)
	}
	return nil
}

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
	// 10 s: the proxy section's processes and pipes wind down after it.
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

// measureAll runs the sections and the experiments (those named in only,
// if it is not empty).
func measureAll(sn *sniffer, sz sizes, only []string, r *Results) error {
	short := r.Options.Short
	steps := []step{
		{"used", "as it is used", func() (err error) { r.AsUsed, err = asUsed(sn, usedCases(sz.usedPairs)); return err }},
		{"levers", "levers, as it is used", func() (err error) {
			cases := leverCases()
			for i := range cases {
				cases[i].pairs = sz.leverPairs
			}
			r.Levers, err = asUsed(sn, cases)
			return err
		}},
		{"paths", "release: timing paths", func() error { return releasePaths(sn, sz, r) }},
		{"loaded", "release: under load", func() error {
			if !sz.experiments {
				return nil
			}
			return releaseLoaded(sn, sz, r)
		}},
		{"batch", "release: batch", func() error {
			row, err := batchRelease(sn, sz.batch, sz.batches)
			r.Release = append(r.Release, row)
			return err
		}},
		{"retransmit", "release: retransmit", func() error {
			row, err := retransmitRow(sn, sz.retransmit)
			r.Release = append(r.Release, row)
			return err
		}},
		{"delayed", "release: delayed-listen", func() error {
			row, err := delayedRow(sn, sz.delayed)
			r.Release = append(r.Release, row)
			return err
		}},
		{"stamps", "timestamps", func() (err error) { r.Stamps, err = stampRows(sn, sz.stamps); return err }},
		{"scale", "scale", func() error { return scaleRows(sn, sz, r) }},
		{"cost", "listen cost", func() error {
			rows, err := listenCost(sz.costCalls)
			if err != nil {
				return err
			}
			floor, err := controlFloor(slices.Max(r.Options.Pairs))
			r.ListenCost = append(rows, floor)
			progress("  %-62s p50 %9s  p99 %9s", floor.Label, stats.FmtUS(floor.Cost.P50US), stats.FmtUS(floor.Cost.P99US))
			return err
		}},
		{"proxy", "proxy", func() error {
			rows, err := proxybench.Run(short, progress)
			r.Proxy, r.ProxyReport = rows, proxybench.Report(rows)
			// The toxiproxy API client's keep-alive connections outlive
			// the servers they went to.
			http.DefaultClient.CloseIdleConnections()
			return err
		}},
		{"clock", "standalone clock", func() (err error) {
			if sz.experiments {
				r.Wake, err = wakeRows(sz.wakeSamples)
			}
			return err
		}},
		{"pool", "pools through handshake-proxy, and the floor", func() (err error) {
			r.Pool, r.Floor, err = poolRows(sn, short)
			return err
		}},
		{"suite", "a parallel suite", func() (err error) { r.Suite, err = suite(sn, sz.suitePairs); return err }},
	}
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

// releasePaths runs the timing paths of strategy Replay, and the
// experiments, interleaved.
func releasePaths(sn *sniffer, sz sizes, r *Results) error {
	main := mainVariants()
	vs := main
	var exps []variant
	if sz.experiments {
		exps = append(experimentVariants(), bareVariants()...)
		vs = append(vs, exps...)
	}
	got, err := runVariants(sn, vs, sz.rounds)
	if err != nil {
		return err
	}
	r.Release = append(r.Release, variantRows(main, got)...)
	r.Experiments = variantRows(exps, got)
	logRows(append(r.Release, r.Experiments...))
	return nil
}

// loadHogs is how many busy processes load the machine in the experiments
// under load: two per core, as found on this kind of CI host.
func loadHogs() int { return 2 * runtime.NumCPU() }

// releaseLoaded runs the library's default path, the release by hand and
// the release by hand with SCHED_FIFO, interleaved, while busy processes
// load every core.
func releaseLoaded(sn *sniffer, sz sizes, r *Results) error {
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

// logRows reports release rows on stderr.
func logRows(rows []ReleaseRow) {
	for _, row := range rows {
		progress("  %-52s p50 %9s  p99 %9s  max %9s", row.Label, stats.FmtUS(row.Error.P50US), stats.FmtUS(row.Error.P99US), stats.FmtUS(row.Error.MaxUS))
	}
}

// scaleRows runs the pair counts: the default on each, the engine kept
// open on the smallest and the knobs on the largest, each interleaved with
// the default of its count.
func scaleRows(sn *sniffer, sz sizes, r *Results) error {
	smallest, largest := slices.Min(r.Options.Pairs), slices.Max(r.Options.Pairs)
	for _, n := range r.Options.Pairs {
		vs := []variant{scaleDefault}
		if sz.experiments && n == largest {
			vs = append(vs, scaleVariants()...)
		}
		rows, err := scaleLog(sn, sz, n, vs)
		if err == nil {
			var floor CostRow
			floor, err = controlFloor(n)
			rows[0].ReplyFloor = floor.Cost
			progress("  %s at once to a do-nothing server: reply p99 %s", pairs(n), stats.FmtUS(floor.Cost.P99US))
		}
		r.Scale = append(r.Scale, rows[0])
		r.ScaleExperiments = append(r.ScaleExperiments, rows[1:]...)
		if err != nil {
			return err
		}
	}
	if !sz.experiments {
		return nil
	}
	// Not interleaved with the default: its rounds must follow one another
	// as a driver's requests do, each meeting the close of the previous
	// pair.
	rows, err := scaleLog(sn, sz, smallest, []variant{scaleKeepEngine})
	r.ScaleExperiments = append(r.ScaleExperiments, rows...)
	return err
}

// scaleLog runs scaleRowsOf with enough rounds for n pairs and reports.
func scaleLog(sn *sniffer, sz sizes, n int, vs []variant) ([]ScaleRow, error) {
	rounds := max(sz.pairRounds, (sz.pairSamples+n-1)/n)
	rows, err := scaleRowsOf(sn, n, rounds, vs)
	for _, row := range rows {
		progress("  %s x %d rounds, %s: reply p99 %s, release p99 %s, FDs %d/%d/%d", pairs(n), rounds, row.Variant,
			stats.FmtUS(row.Reply.P99US), stats.FmtUS(row.Release.P99US), row.Baseline.FDs, row.Peak.FDs, row.After.FDs)
	}
	return rows, err
}

// progress reports on stderr; stdout carries the report.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
