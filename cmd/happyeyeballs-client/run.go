package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/cli"
	"github.com/synhold/synhold/internal/dialrace"
)

// options are the parsed command line.
type options struct {
	port     int
	slow     int
	samePort bool
	timeout  time.Duration
}

// pair is the server's answer (where each family listens) and when it came.
type pair struct {
	happyeyeballs.Pair
	repliedAt time.Time
}

// dialResult is the family that won, its connection, and when its dial
// returned.
type dialResult struct {
	family int
	conn   net.Conn
	at     time.Time
}

// run is the whole program, callable in-process by tests. It returns the
// exit status: 0 only if the fast family won and its byte matched.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if code, exit := cli.UsageExit("happyeyeballs-client", err, stderr); exit {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	p, err := requestPair(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-client: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "pair: IPv4 %s, IPv6 %s; slow family IPv%d, fast IPv%d\n", p.IPv4, p.IPv6, o.slow, fast(o.slow))
	err = race(ctx, p, o.slow, stdout)
	printJudgement(ctx, o, p, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-client: %v\n", err)
		return 1
	}
	return 0
}

// judgementWait bounds the wait for the server's judgement.
const judgementWait = 3 * time.Second

// printJudgement prints the server's judgement of this client on p (it
// dials both families at once, so RFC 8305 says NoAttemptDelay). A server
// that does not judge (an older one, or the original) is not an error.
func printJudgement(ctx context.Context, o options, p pair, stdout, stderr io.Writer) {
	// The pair closes at its first connection; with none (both dials
	// failed) it stays open until its timeout: wait a little only.
	ctx, cancel := context.WithTimeout(ctx, judgementWait)
	defer cancel()
	j, err := controlClient(o).Judgement(ctx, p.Pair)
	if err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-client: no judgement from the server: %v\n", err)
		return
	}
	devs := ""
	if len(j.Deviations) > 0 {
		devs = fmt.Sprintf(" %v", j.Deviations)
	}
	fmt.Fprintf(stdout, "server's judgement (RFC 8305): %s%s: %s\n", j.Verdict, devs, j.Why)
}

// controlClient talks to the server on the control port of o.
func controlClient(o options) *happyeyeballs.Client {
	return &happyeyeballs.Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)), SamePort: o.samePort}
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("happyeyeballs-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.port, "c", happyeyeballs.DefaultControlPort, "control `port` of the server (on 127.0.0.1)")
	fs.IntVar(&o.slow, "d", 4, "the slow `family`: 4 or 6")
	fs.BoolVar(&o.samePort, "same-port", false, "ask for both families on one port number (0x14/0x16)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up after this")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.slow != 4 && o.slow != 6:
		return o, fmt.Errorf("-d %d: want 4 or 6", o.slow)
	case o.port <= 0 || o.port > 65535:
		return o, fmt.Errorf("-c %d: port out of range", o.port)
	}
	return o, nil
}

func fast(slow int) int { return 10 - slow }

// requestPair asks the server for a pair.
func requestPair(ctx context.Context, o options) (pair, error) {
	p, err := controlClient(o).Pair(ctx, o.slow)
	if err != nil {
		return pair{}, err
	}
	return pair{Pair: p, repliedAt: time.Now()}, nil
}

// race dials both families at once, keeps the first that connects, reads
// its byte and reports. It fails unless the fast family won with its byte.
func race(ctx context.Context, p pair, slow int, w io.Writer) error {
	conn, i, attempts, err := dialrace.Race(ctx, 0, dialrace.Target{Network: "tcp4", Addr: p.IPv4.String()}, dialrace.Target{Network: "tcp6", Addr: p.IPv6.String()})
	if err != nil {
		return fmt.Errorf("neither family connected: %w", err)
	}
	defer conn.Close()
	return report(w, p, dialResult{family: []int{4, 6}[i], conn: conn, at: attempts[i].Done}, fast(slow))
}

// report reads the winner's byte and prints what happened.
func report(w io.Writer, p pair, win dialResult, fastFamily int) error {
	after := win.at.Sub(p.repliedAt)
	fmt.Fprintf(w, "connected over IPv%d after %v (since the reply)\n", win.family, after.Round(time.Microsecond))
	win.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(win.conn, b[:]); err != nil {
		return fmt.Errorf("IPv%d connected but sent no byte: %w", win.family, err)
	}
	matched := int(b[0]) == fastFamily
	fmt.Fprintf(w, "read 0x%02x; fast family IPv%d won: %v; byte matched: %v\n", b[0], fastFamily, win.family == fastFamily, matched)
	if win.family != fastFamily || !matched {
		return fmt.Errorf("the slow family won or the byte did not match (won IPv%d, read 0x%02x, want IPv%d and 0x%02x)",
			win.family, b[0], fastFamily, fastFamily)
	}
	fmt.Fprintln(w, "ok")
	return nil
}
