// Command bench measures how precisely synhold's listeners complete TCP
// handshakes at a requested instant on this machine, and writes into -out a
// Markdown report (report.md, also printed on stdout), a JSON file with
// every figure (results.json) and SVG plots of the error distributions
// (cdf-used.svg, cdf.svg per strategy and timing path, cdf-experiments.svg
// for the experiments); progress goes to stderr:
//
//	go run ./bench [-trials N] [-pairs 1,100,500] [-used-pairs N] [-only PARTS] [-short] [-out DIR]
//
// It measures (0) the Happy Eyeballs server as it is used: the
// happyeyeballs-server binary in its own process, pairs asked for one after
// another by a client process, tcpdump as the observer, on the machine as
// it is and with 4 busy processes, then each of the library's levers turned
// off on the same binary; in one process, (1) the error of the SYN-ACK's
// kernel timestamp against the instant, per strategy and per timing path of
// the release clock, (2) the server's timestamps of a connection attempt
// against the client's own record, and (3) Happy Eyeballs pairs requested
// at once: control reply latency, release error, memory and descriptors;
// and handshake-proxy's handshake_delay and handshake_refuse error and its
// forwarding against a direct connection and against toxiproxy-server.
// Experiments (on by default; -experiments=false skips them) turn one knob
// at a time, make the release by hand with the same system calls, and load
// the machine with busy processes it starts and kills, to show what a
// change to the library would buy. It needs Linux, CAP_NET_RAW, the go
// command and tcpdump, and sends traffic only to 127.0.0.1 and ::1. It
// exits non-zero on any error, and if descriptors leaked. The default size
// takes about 11 minutes; -short under a minute.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/synhold/synhold/bench/internal/cdf"
)

// runSubcommand runs the process the benchmark starts itself as (a client
// process, the pool client, the do-nothing server) when args name one, and
// reports whether they did, with its exit code. The benchmark's binary and
// its test binary both start so.
func runSubcommand(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case clientCommand:
		return runClient(args[1:], os.Stdout, os.Stderr), true
	case poolCommand:
		return runPoolClient(args[1:], os.Stdout, os.Stderr), true
	case noopCommand:
		return runNoopServer(args[1:], os.Stderr), true
	}
	return 0, false
}

func main() {
	if code, ok := runSubcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line; -short shrinks every size that was
// not given explicitly.
func parseFlags(args []string) (Options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	trials := fs.Int("trials", 300, "release trials per timing path (experiments run half as many)")
	pairs := fs.String("pairs", "1,100,500", "comma-separated counts of Happy Eyeballs pairs requested at once")
	short := fs.Bool("short", false, "a quick run (under a minute): fewer trials and rounds")
	out := fs.String("out", filepath.Join("bench", "out"), "directory for report.md, results.json and cdf.svg")
	extra := fs.Bool("experiments", true, "run the experiments that push toward the targets")
	only := fs.String("only", "", "run only these parts, comma-separated: "+strings.Join(stepKeys, ", "))
	usedPairs := fs.Int("used-pairs", 0, "pairs per case of the \"as it is used\" scenario (default 200, -short 4)")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := Options{Trials: *trials, Short: *short, Out: *out, Extra: *extra, Command: strings.Join(append([]string{"go run ./bench"}, args...), " ")}
	if o.Short && !set["trials"] {
		o.Trials = 20
	}
	if *only != "" {
		for k := range strings.SplitSeq(*only, ",") {
			if !slices.Contains(stepKeys, k) {
				return Options{}, fmt.Errorf("-only %q: unknown part %q (want %s)", *only, k, strings.Join(stepKeys, ", "))
			}
			o.Only = append(o.Only, k)
		}
	}
	if *usedPairs < 0 {
		return Options{}, fmt.Errorf("-used-pairs %d: want a positive count", *usedPairs)
	}
	o.UsedPairs = *usedPairs
	if o.Trials < 2 {
		return Options{}, fmt.Errorf("-trials %d: want at least 2", o.Trials)
	}
	var err error
	if o.Pairs, err = parsePairs(*pairs); err != nil {
		return Options{}, err
	}
	return o, nil
}

// stepKeys are the keys -only takes, in the order the steps run.
var stepKeys = []string{"used", "levers", "paths", "loaded", "batch", "retransmit", "delayed", "stamps", "scale", "cost", "proxy", "clock", "pool", "suite"}

// parsePairs parses a comma-separated list of positive counts.
func parsePairs(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-pairs %q: want positive counts separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// writeOutputs writes report.md, results.json and cdf.svg into dir and
// returns the report.
func writeOutputs(dir string, r *Results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var md strings.Builder
	if err := WriteReport(&md, r); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	err = errors.Join(
		writePlot(filepath.Join(dir, "cdf-used.svg"), "Handshake release error as it is used (tcpdump)", usedSeries(r)),
		writePlot(filepath.Join(dir, "cdf.svg"), "Handshake release error per strategy and timing path", plotSeries(r)),
		writePlot(filepath.Join(dir, "cdf-experiments.svg"), "Handshake release error: experiments", experimentSeries(r)),
		os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644),
		os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644))
	return md.String(), err
}

// writePlot writes one CDF plot of release errors to path.
func writePlot(path, title string, series []cdf.Series) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = cdf.Write(f, title+" (SYN-ACK kernel time − requested instant)",
		"release error, µs (log scale; values ≤ the left edge drawn at it)", series)
	return errors.Join(err, f.Close())
}

// plotSeries are the curves of cdf.svg: every row of section 1 that
// completed handshakes, and the fast sides of the scale runs.
func plotSeries(r *Results) []cdf.Series {
	ss := releaseSeries(r.Release)
	for _, s := range r.Scale {
		ss = append(ss, cdf.Series{Name: fmt.Sprintf("Happy Eyeballs, %s at once (fast side)", pairs(s.Pairs)), Values: s.SamplesUS})
	}
	return ss
}

// usedSeries are the curves of cdf-used.svg: every "as it is used" row of
// all pairs, and the warm loop.
func usedSeries(r *Results) []cdf.Series {
	var ss []cdf.Series
	for _, u := range append(r.AsUsed, r.Levers...) {
		if u.Mode == "" {
			ss = append(ss, cdf.Series{Name: "as used, " + u.Label, Values: u.SamplesUS})
		}
	}
	if def, ok := releaseRow(r.Release, "replay/timerfd+spin"); ok {
		ss = append(ss, cdf.Series{Name: "warm loop in-process: " + def.Label, Values: def.SamplesUS})
	}
	return ss
}

// experimentSeries are the curves of cdf-experiments.svg: the default
// path and every experiment.
func experimentSeries(r *Results) []cdf.Series {
	var ss []cdf.Series
	if def, ok := releaseRow(r.Release, "replay/timerfd+spin"); ok {
		ss = append(ss, cdf.Series{Name: def.Label, Values: def.SamplesUS})
	}
	return append(ss, releaseSeries(r.Experiments)...)
}

// releaseSeries are the curves of the rows that completed handshakes.
func releaseSeries(rows []ReleaseRow) []cdf.Series {
	var ss []cdf.Series
	for _, row := range rows {
		if row.Refused == 0 {
			ss = append(ss, cdf.Series{Name: row.Label, Values: row.SamplesUS})
		}
	}
	return ss
}
