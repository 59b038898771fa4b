// Command backoff-check judges a gRPC client's connection backoff offline,
// the way reconnect-server does live: from a pcap file of its SYNs, or from
// a list of attempt times.
//
// Usage:
//
//	backoff-check --pcap FILE --port N [--client ADDR]... [--max_backoff 120s] [--json] [--svg FILE]
//	backoff-check [--times FILE] [--max_backoff 120s] [--json] [--svg FILE]   (stdin without --times)
//
// With --pcap, every SYN to port N is an attempt, one per (source address and
// port, ISN): retransmissions are reported and left out, and so are the
// attempts of sources other than the --client addresses when any are given.
// A file from "tcpdump -i any" on loopback holds each packet twice; the
// second copy is dropped.
//
// A times list has one attempt per line: a time, as seconds (a decimal
// number, such as Unix time) or RFC 3339, and optionally the destination
// address (host or host:port), separated by spaces or a comma. Blank lines
// and lines starting with # are skipped.
//
// It prints the analysis (text, or JSON with --json), with the verdict the
// reference server would give on the same attempts beside its own, and with
// --svg also draws it (see backoff.Analysis.WriteSVG). It exits 0 when the
// client passes, as a reconnect server judging each destination by the
// reference rule would say, 1 when it fails (a client with fewer than three
// attempts to every address fails: TooFewAttempts), 2 on bad input or a
// file it cannot write. It needs no privilege and runs on any system;
// docs/backoff-check.md describes the report and its JSON fields.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/synhold/synhold/backoff"
	"github.com/synhold/synhold/internal/cli"
	"github.com/synhold/synhold/listener/capture"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the command line's settings.
type options struct {
	pcap       string
	port       int
	times      string
	maxBackoff time.Duration
	json       bool
	svg        string
	clients    []netip.Addr
}

// parseArgs parses the command line.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	o := options{maxBackoff: backoff.Default().Max}
	fs := flag.NewFlagSet("backoff-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.pcap, "pcap", "", "pcap or pcapng file of the client's SYNs")
	fs.IntVar(&o.port, "port", 0, "with --pcap: the retry port the SYNs go to")
	fs.StringVar(&o.times, "times", "", "file of attempt times, one a line (stdin when neither --pcap nor --times is given)")
	fs.DurationVar(&o.maxBackoff, "max_backoff", o.maxBackoff, "the maximum backoff the client was asked for (max_reconnect_backoff_ms)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of text")
	fs.StringVar(&o.svg, "svg", "", "also draw the attempts, windows and deviations as an SVG picture to this file")
	fs.Func("client", "with --pcap: an address of the client under test (repeatable; default: every source)", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return err
		}
		o.clients = append(o.clients, a.Unmap())
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.pcap != "" && o.times != "":
		return o, errors.New("give --pcap or --times, not both")
	case o.pcap != "" && (o.port <= 0 || o.port > 65535):
		return o, errors.New("--pcap needs --port, the retry port")
	case o.pcap == "" && o.port != 0:
		return o, errors.New("--port applies to --pcap only")
	case o.pcap == "" && len(o.clients) > 0:
		return o, errors.New("--client applies to --pcap only: a times list has no source addresses")
	case o.maxBackoff <= 0:
		return o, errors.New("--max_backoff must be positive")
	}
	return o, nil
}

// report is the JSON output: the verdict and gaps a reconnect server would
// return, why it failed, what the reference server would return on the same
// attempts, and the analysis.
type report struct {
	Passed             bool               `json:"passed"`
	Reason             *backoff.Deviation `json:"reason,omitempty"`
	BackoffMs          []int32            `json:"backoff_ms"`
	ReferencePassed    bool               `json:"reference_passed"`
	ReferenceBackoffMs []int32            `json:"reference_backoff_ms"`
	Duplicates         int                `json:"duplicates,omitempty"`
	Analysis           backoff.Analysis   `json:"analysis"`
}

// run checks the attempts and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if code, exit := cli.UsageExit("backoff-check", err, stderr); exit {
		return code
	}
	in, err := load(o, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "backoff-check:", err)
		return 2
	}
	p := backoff.Default()
	p.Max = o.maxBackoff
	a := backoff.Analyze(in.attempts, p, backoff.Options{Clients: o.clients, Observed: in.span})
	r := report{
		Passed:             a.Passed,
		Reason:             a.Reason,
		BackoffMs:          a.BackoffMs(),
		ReferencePassed:    a.MergedReferencePassed,
		ReferenceBackoffMs: a.ReferenceBackoffMs,
		Duplicates:         in.dups,
		Analysis:           a,
	}
	if err := write(stdout, r, o.json); err != nil {
		fmt.Fprintln(stderr, "backoff-check:", err)
		return 2
	}
	if o.svg != "" {
		if err := writeSVG(o.svg, a, in.name); err != nil {
			fmt.Fprintln(stderr, "backoff-check:", err)
			return 2
		}
	}
	if !r.Passed {
		return 1
	}
	return 0
}

// input is what load read.
type input struct {
	name     string
	attempts []backoff.Attempt
	dups     int
	// span is the time from the first to the last packet of a capture, how
	// long the client was watched; 0 for a times list.
	span time.Duration
}

// load reads the attempts from the pcap file, the times file or stdin.
func load(o options, stdin io.Reader) (input, error) {
	var r io.Reader = stdin
	in := input{name: "stdin"}
	if o.pcap != "" || o.times != "" {
		in.name = o.pcap + o.times
		f, err := os.Open(in.name)
		if err != nil {
			return in, err
		}
		defer f.Close()
		r = f
	}
	var err error
	if o.pcap != "" {
		in.attempts, in.dups, in.span, err = pcapAttempts(r, uint16(o.port))
	} else {
		in.attempts, err = parseTimes(r)
	}
	if err != nil {
		return in, fmt.Errorf("%s: %w", in.name, err)
	}
	if len(in.attempts) == 0 {
		return in, fmt.Errorf("%s: no attempts", in.name)
	}
	return in, nil
}

// writeSVG draws a to the file name, titled after the input.
func writeSVG(name string, a backoff.Analysis, from string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("backoff-check: %s, max backoff %g s", from, a.Policy.Max.Seconds())
	if err := a.WriteSVG(f, title); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// write prints r as text or JSON.
func write(w io.Writer, r report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if err := r.Analysis.WriteText(w); err != nil {
		return err
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(w, "duplicate copies dropped (a capture on \"any\" sees loopback packets twice): %d\n", r.Duplicates)
	}
	_, err := fmt.Fprintf(w, "ReconnectInfo: passed=%t backoff_ms=%v\nreference server's ReconnectInfo on the same attempts: passed=%t backoff_ms=%v\n",
		r.Passed, r.BackoffMs, r.ReferencePassed, r.ReferenceBackoffMs)
	return err
}

// dupWindow is how close two copies of one SYN are when a capture saw the
// packet twice; a retransmission comes at least 200 ms later.
const dupWindow = time.Millisecond

// pcapAttempts returns the SYNs to port in a pcap or pcapng file as
// attempts, with the copies of a packet the capture saw twice dropped and
// counted, and the time from the first packet to the last. Retransmissions
// are kept, for Analyze to report.
func pcapAttempts(r io.Reader, port uint16) ([]backoff.Attempt, int, time.Duration, error) {
	type key struct {
		src, dst netip.AddrPort
		isn      uint32
	}
	last := map[key]time.Time{}
	var (
		attempts []backoff.Attempt
		dups     int
		first    time.Time
		span     time.Duration
	)
	err := capture.ReadAll(r, func(p capture.Packet) error {
		if first.IsZero() {
			first = p.Time
		}
		span = max(span, p.Time.Sub(first))
		if !p.IsSYN() || p.Dst.Port() != port {
			return nil
		}
		k := key{p.Src, p.Dst, p.Seq}
		if t, ok := last[k]; ok && absDuration(p.Time.Sub(t)) < dupWindow {
			dups++
			return nil
		}
		last[k] = p.Time
		attempts = append(attempts, backoff.Attempt{Time: p.Time, Src: p.Src, Dst: p.Dst, ISN: p.Seq, HasISN: true})
		return nil
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read pcap: %w", err)
	}
	return attempts, dups, span, nil
}

// absDuration returns |d|.
func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// maxLine bounds a line of a times list.
const maxLine = 4096

// parseTimes reads a times list: one attempt a line, a time and optionally
// the destination.
func parseTimes(r io.Reader) ([]backoff.Attempt, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	var attempts []backoff.Attempt
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		attempts = append(attempts, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read times: %w", err)
	}
	return attempts, nil
}

// parseLine parses one line of a times list.
func parseLine(line string) (backoff.Attempt, error) {
	fields := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(fields) == 0 || len(fields) > 2 {
		return backoff.Attempt{}, fmt.Errorf("%q: want a time and optionally a destination address", line)
	}
	t, err := parseTime(fields[0])
	if err != nil {
		return backoff.Attempt{}, err
	}
	a := backoff.Attempt{Time: t}
	if len(fields) == 2 {
		if a.Dst, err = parseDestination(fields[1]); err != nil {
			return backoff.Attempt{}, err
		}
	}
	return a, nil
}

// maxSeconds bounds a time given in seconds to about ±31 700 years around
// 1970: far beyond any capture, and well inside what time.Time holds.
const maxSeconds = 1e12

// parseTime parses seconds (exactly, to the nanosecond, when written as a
// plain decimal number) or an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if t, ok, err := parseDecimalSeconds(s); ok {
		return t, err
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.Abs(f) >= maxSeconds {
			return time.Time{}, fmt.Errorf("time %q out of range", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is neither seconds nor RFC 3339", s)
	}
	return t, nil
}

// parseDecimalSeconds parses [-]digits[.digits] exactly. ok is false when s
// is not of that form.
func parseDecimalSeconds(s string) (t time.Time, ok bool, err error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(body, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) {
		return time.Time{}, false, nil
	}
	if len(strings.TrimLeft(whole, "0")) > 12 {
		return time.Time{}, true, fmt.Errorf("time %q out of range", s)
	}
	sec := int64(0)
	if whole != "" {
		sec, _ = strconv.ParseInt(whole, 10, 64) // at most 12 significant digits
	}
	if len(frac) > 9 {
		frac = frac[:9] // below a nanosecond: truncated
	}
	ns := int64(0)
	if frac != "" {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	if neg {
		sec, ns = -sec, -ns
	}
	return time.Unix(sec, ns).UTC(), true, nil
}

// allDigits reports whether s holds only ASCII digits (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDestination parses host:port, or a bare address (port 0).
func parseDestination(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("destination %q is neither an address nor address:port", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 0), nil
}
