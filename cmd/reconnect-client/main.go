// Command reconnect-client is a client of gRPC's connection-backoff interop
// test (doc/connection-backoff-interop-test-description.md in grpc/grpc),
// with the reference C++ client's flags, built on grpc-go.
//
// It calls Start on the control port (plaintext), then a wait-for-ready
// Start on the retry port (TLS) with a long deadline while grpc-go
// reconnects with its backoff, expects DEADLINE_EXCEEDED, calls Stop, prints
// the server's verdict and backoff_ms and its own check of them, and exits
// 0 only when the server and its own check both say passed.
//
// Usage:
//
//	reconnect-client --server_control_port 8080 --server_retry_port 8081
//	    [--server_host localhost] [--max_reconnect_backoff_ms 0] [--deadline 540s]
//	    [--initial_backoff 1s] [--multiplier 1.6] [--jitter 0.2]
//
// --initial_backoff, --multiplier and --jitter set grpc-go's backoff; their
// defaults are gRPC's, and other values make a client that breaks the spec,
// to test servers with. --max_reconnect_backoff_ms 0 asks for the server's
// default cap, 120000 ms. It needs no privilege; docs/reconnect.md runs the
// whole procedure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	pb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/synhold/synhold/backoff"
	"github.com/synhold/synhold/broker/reconnect"
	"github.com/synhold/synhold/internal/cli"
)

func main() {
	cli.Main(run)
}

// options are the command line's settings.
type options struct {
	host               string
	controlPort        int
	retryPort          int
	maxBackoffMs       int
	deadline           time.Duration
	initial            time.Duration
	multiplier, jitter float64
}

// parseArgs parses the command line.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	def := backoff.Default()
	var o options
	fs := flag.NewFlagSet("reconnect-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.host, "server_host", "localhost", "server host to connect to")
	fs.IntVar(&o.controlPort, "server_control_port", 0, "server port for control RPCs (plaintext)")
	fs.IntVar(&o.retryPort, "server_retry_port", 0, "server port for testing reconnection (TLS)")
	fs.IntVar(&o.maxBackoffMs, "max_reconnect_backoff_ms", 0, "maximum backoff in ms, or 0 for the default (120000)")
	fs.DurationVar(&o.deadline, "deadline", 540*time.Second, "deadline of the call on the retry port (about 13 retries in 540 s)")
	fs.DurationVar(&o.initial, "initial_backoff", def.Initial, "the client's initial backoff")
	fs.Float64Var(&o.multiplier, "multiplier", def.Multiplier, "the client's backoff multiplier")
	fs.Float64Var(&o.jitter, "jitter", def.Jitter, "the client's backoff jitter")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.controlPort <= 0 || o.controlPort > 65535:
		return o, fmt.Errorf("--server_control_port %d: want a port number", o.controlPort)
	case o.retryPort <= 0 || o.retryPort > 65535:
		return o, fmt.Errorf("--server_retry_port %d: want a port number", o.retryPort)
	case o.maxBackoffMs < 0 || o.maxBackoffMs > 1<<31-1:
		return o, fmt.Errorf("--max_reconnect_backoff_ms %d out of range", o.maxBackoffMs)
	case o.deadline <= 0 || o.initial <= 0:
		return o, errors.New("--deadline and --initial_backoff must be positive")
	case o.multiplier <= 0 || o.jitter < 0 || o.jitter >= 1:
		return o, errors.New("--multiplier must be positive and --jitter in [0, 1)")
	}
	return o, nil
}

// client returns the test client the options describe.
func (o options) client() reconnect.Client {
	p := backoff.Policy{Initial: o.initial, Multiplier: o.multiplier, Jitter: o.jitter,
		Max: time.Duration(o.maxBackoffMs) * time.Millisecond, MinConnectTimeout: backoff.Default().MinConnectTimeout}
	if p.Max == 0 {
		p.Max = backoff.Default().Max
	}
	return reconnect.Client{
		Control:      net.JoinHostPort(o.host, strconv.Itoa(o.controlPort)),
		Retry:        net.JoinHostPort(o.host, strconv.Itoa(o.retryPort)),
		MaxBackoffMs: int32(o.maxBackoffMs),
		Backoff:      p,
		Deadline:     o.deadline,
	}
}

// run runs the test and returns the exit code: 0 when the server and the
// client's own check both pass, 1 when either fails or an RPC goes wrong,
// 2 for a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if code, exit := cli.UsageExit("reconnect-client", err, stderr); exit {
		return code
	}
	c := o.client()
	fmt.Fprintf(stdout, "control %s, retry %s (TLS), max backoff %d ms, deadline %v, client backoff: initial %v, multiplier %g, jitter %g\n",
		c.Control, c.Retry, o.maxBackoffMs, o.deadline, o.initial, o.multiplier, o.jitter)
	r, err := c.Run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "reconnect-client:", err)
		return 1
	}
	fmt.Fprintf(stdout, "retry call: %v after %.1f s\n", r.Retry.Code(), r.Elapsed.Seconds())
	if !verdict(stdout, r.Info, time.Duration(o.maxBackoffMs)*time.Millisecond) || !r.RetryOK() {
		if !r.RetryOK() {
			fmt.Fprintf(stdout, "retry call ended with %v, want DeadlineExceeded\n", r.Retry.Err())
		}
		fmt.Fprintln(stdout, "FAILED")
		return 1
	}
	fmt.Fprintln(stdout, "PASSED")
	return 0
}

// verdict prints the server's verdict and the client's own check of
// backoff_ms, and reports whether both passed.
func verdict(w io.Writer, info *pb.ReconnectInfo, maxBackoff time.Duration) bool {
	gaps := make([]time.Duration, len(info.GetBackoffMs()))
	for i, ms := range info.GetBackoffMs() {
		gaps[i] = time.Duration(ms) * time.Millisecond
	}
	ref := backoff.Reference(maxBackoff, gaps)
	a := ownAnalysis(gaps, maxBackoff)
	own := ref && a.Passed && len(gaps) > 0
	fmt.Fprintf(w, "server: %s, backoff_ms %v\n", passFail(info.GetPassed()), info.GetBackoffMs())
	fmt.Fprintf(w, "client check of backoff_ms: %s (reference rule: %s, %d gaps)\n", passFail(own), passFail(ref), len(gaps))
	if len(gaps) == 0 {
		fmt.Fprintln(w, "no gaps: the server saw fewer than two attempts")
	}
	a.WriteText(w)
	return info.GetPassed() && own
}

// ownAnalysis analyses the gaps as attempts at their cumulative times.
func ownAnalysis(gaps []time.Duration, maxBackoff time.Duration) backoff.Analysis {
	p := backoff.Default()
	if maxBackoff > 0 {
		p.Max = maxBackoff
	}
	at := time.Unix(0, 0)
	attempts := []backoff.Attempt{{Time: at}}
	for _, g := range gaps {
		at = at.Add(g)
		attempts = append(attempts, backoff.Attempt{Time: at})
	}
	return backoff.Analyze(attempts, p, backoff.Options{})
}

// passFail prints a verdict.
func passFail(ok bool) string {
	if ok {
		return "passed"
	}
	return "failed"
}
