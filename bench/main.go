// Command bench measures how precisely synhold's listeners complete TCP
// handshakes at a requested instant on this machine. It has three parts,
// each writing its report into -out (and printing it on stdout; progress
// goes to stderr):
//
//	go run ./bench [FLAGS]              the headline: report.md, results.json, cdf-used.svg
//	go run ./bench proxy [FLAGS]        handshake-proxy: proxy.md, proxy.json
//	go run ./bench experiments [FLAGS]  what explains the levers: experiments.md, experiments.json, cdf.svg, cdf-experiments.svg
//	go run ./bench all [FLAGS]          the three, into one -out directory
//
// FLAGS are -short, -out DIR, -only KEYS (steps of the part(s) run),
// -pairs 1,100,500, -used-pairs N and -trials N.
//
// The headline measures the Happy Eyeballs server as it is used: the
// happyeyeballs-server binary in its own process, pairs asked for one after
// another by a client process, tcpdump as the observer, on the machine as
// it is and with 4 busy processes, then each of the library's levers turned
// off on the same binary; and the scale rows: pairs requested at once,
// connection pools through handshake-proxy beside this machine's floor for
// as many handshakes, and a parallel suite of client processes. It fails
// (exit 1, naming the row) when an as-used row lost a pair.
//
// The proxy part measures handshake-proxy's handshake toxics and its
// forwarding against a direct connection, a minimal Go splice proxy and
// toxiproxy-server (bench/internal/proxybench).
//
// The experiments run in this process, one knob at a time: the release
// per strategy and timing path of the release clock, under load, in a
// batch, by hand with the same system calls, the server's timestamps
// against the client's record, the scale knobs, what a listen costs, and
// the standalone clock's wake-ups.
//
// It needs Linux, CAP_NET_RAW, the go command and tcpdump, and sends
// traffic only to 127.0.0.1 and ::1. It exits non-zero on any error, and if
// descriptors leaked. The default sizes take about 13 minutes for all;
// -short about a minute.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	parts, opts, err := parseArgs(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // -h: the flag set printed the usage
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(parts, opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// usage is the command line, printed after a usage error.
const usage = `usage: go run ./bench [headline|proxy|experiments|all] [-short] [-out DIR] [-only KEYS] [-pairs 1,100,500] [-used-pairs N] [-trials N]`

// A part is one of the bench's three parts: its name on the command line
// and the keys -only takes for its steps.
type part struct {
	name string
	keys []string
}

// The parts, in the order "all" runs them.
var (
	headlinePart    = part{"headline", []string{"used", "levers", "scale", "pool", "suite"}}
	proxyPart       = part{"proxy", nil}
	experimentsPart = part{"experiments", []string{"paths", "loaded", "batch", "retransmit", "delayed", "stamps", "scale-knobs", "cost", "clock"}}
	allParts        = []part{headlinePart, proxyPart, experimentsPart}
)

// parseArgs reads the command line: an optional part ("headline" when
// none is named, or "all") and the flags; -short shrinks every size that
// was not given explicitly.
func parseArgs(args []string) ([]part, Options, error) {
	command := strings.Join(append([]string{"go run ./bench"}, args...), " ")
	parts := []part{headlinePart}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "all":
			parts = allParts
		default:
			i := slices.IndexFunc(allParts, func(p part) bool { return p.name == args[0] })
			if i < 0 {
				return nil, Options{}, fmt.Errorf("unknown part %q (want headline, proxy, experiments or all)", args[0])
			}
			parts = allParts[i : i+1]
		}
		args = args[1:]
	}
	var keys []string
	for _, p := range parts {
		keys = append(keys, p.keys...)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		fs.PrintDefaults()
	}
	trials := fs.Int("trials", 300, "release trials per timing path of the experiments (those under load run half as many)")
	pairs := fs.String("pairs", "1,100,500", "comma-separated counts of Happy Eyeballs pairs requested at once")
	short := fs.Bool("short", false, "a quick run: fewer trials and rounds")
	out := fs.String("out", filepath.Join("bench", "out"), "directory for the reports, JSON files and plots")
	only := fs.String("only", "", "run only these steps, comma-separated: "+strings.Join(keys, ", "))
	usedPairs := fs.Int("used-pairs", 0, "pairs per case of the \"as it is used\" scenario (default 200, -short 4)")
	if err := fs.Parse(args); err != nil {
		return nil, Options{}, err
	}
	if fs.NArg() > 0 {
		return nil, Options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := Options{Trials: *trials, Short: *short, Out: *out, Command: command}
	if o.Short && !set["trials"] {
		o.Trials = 20
	}
	if *only != "" {
		if len(keys) == 0 {
			return nil, Options{}, fmt.Errorf("-only %q: the %s part has no steps to choose from", *only, parts[0].name)
		}
		for k := range strings.SplitSeq(*only, ",") {
			if !slices.Contains(keys, k) {
				return nil, Options{}, fmt.Errorf("-only %q: unknown step %q (want %s)", *only, k, strings.Join(keys, ", "))
			}
			o.Only = append(o.Only, k)
		}
	}
	if *usedPairs < 0 {
		return nil, Options{}, fmt.Errorf("-used-pairs %d: want a positive count", *usedPairs)
	}
	o.UsedPairs = *usedPairs
	if o.Trials < 2 {
		return nil, Options{}, fmt.Errorf("-trials %d: want at least 2", o.Trials)
	}
	var err error
	if o.Pairs, err = parsePairs(*pairs); err != nil {
		return nil, Options{}, err
	}
	return parts, o, nil
}

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
