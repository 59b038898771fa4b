package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/cli"
	"github.com/synhold/synhold/internal/eventlog"
	"github.com/synhold/synhold/listener"
)

// options are the parsed command line.
type options struct {
	port        int
	wait, stop  bool
	timeout     time.Duration
	fast, slow  time.Duration
	pairTimeout time.Duration
	idleTimeout time.Duration
	samePort    bool
	spares      int
	nice        int
	strategy    string
	logFormat   string
	reportDir   string
}

// run is the whole program, callable in-process by tests: it parses args,
// then waits for, stops or runs a server. It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if code, exit := cli.UsageExit("happyeyeballs-server", err, stderr); exit {
		return code
	}
	switch {
	case o.wait:
		return waitReady(ctx, o, stdout, stderr)
	case o.stop:
		return stopServer(ctx, o, stdout, stderr)
	}
	logger, err := eventlog.New(stderr, o.logFormat, nil)
	if err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-server: %v\n", err)
		return 2
	}
	if err := serve(ctx, o, logger); err != nil {
		logger.Error("happy eyeballs server failed", "err", err)
		return 1
	}
	return 0
}

// parseArgs parses and checks the command line.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("happyeyeballs-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.port, "c", happyeyeballs.DefaultControlPort, "control `port` (shorthand for --control)")
	fs.IntVar(&o.port, "control", happyeyeballs.DefaultControlPort, "control `port`, on 127.0.0.1 and ::1")
	fs.BoolVar(&o.wait, "wait", false, "wait until a server on the control port answers, then exit")
	fs.BoolVar(&o.stop, "stop", false, "ask the server on the control port to shut down, and wait until it has gone")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long --wait and --stop wait")
	fs.DurationVar(&o.fast, "fast-delay", happyeyeballs.DefaultFastDelay, "when the fast family's handshakes complete, after the pair is handed out (just before the reply)")
	fs.DurationVar(&o.slow, "slow-delay", happyeyeballs.DefaultSlowDelay, "when the slow family's handshakes complete, after the pair is handed out")
	fs.DurationVar(&o.pairTimeout, "pair-timeout", happyeyeballs.DefaultPairTimeout, "close a pair nobody connected to after this")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", happyeyeballs.DefaultIdleTimeout, "close a control connection that sends nothing after this")
	fs.BoolVar(&o.samePort, "same-port", false, "answer 0x04 and 0x06 like 0x14 and 0x16: both families on one port number")
	fs.IntVar(&o.spares, "spares", 1, "pairs kept open ahead of requests, so that a reply need not wait for two listeners to open (0: none)")
	fs.IntVar(&o.nice, "nice", -10, "nice value of the server's threads, where permitted (CAP_SYS_NICE), so that a busy machine delays its replies less; 0: leave it")
	fs.StringVar(&o.strategy, "strategy", "auto", "how handshakes are held: auto, replay, retransmit or delayed-listen")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.reportDir, "report", "", "on shutdown, write the judgements of every pair into `DIR` (report.json, summary.txt, timeline.svg), creating it if needed")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.check(fs.Args())
}

// check rejects contradictory or out-of-range options.
func (o options) check(rest []string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected arguments %q", rest)
	case o.port < 0 || o.port > 65535:
		return fmt.Errorf("control port %d out of range", o.port)
	case o.wait && o.stop:
		return errors.New("--wait and --stop are exclusive")
	case o.timeout <= 0:
		return fmt.Errorf("--timeout %v: must be positive", o.timeout)
	case o.fast <= 0 || o.slow <= 0 || o.pairTimeout <= 0 || o.idleTimeout <= 0:
		return errors.New("delays and timeouts must be positive")
	case o.nice < -20 || o.nice > 19:
		return fmt.Errorf("--nice %d: want -20 to 19", o.nice)
	case o.spares < 0:
		return fmt.Errorf("--spares %d: want 0 or more", o.spares)
	case o.fast >= o.slow:
		return fmt.Errorf("--fast-delay %v must be shorter than --slow-delay %v", o.fast, o.slow)
	case o.logFormat != "text" && o.logFormat != "json":
		return fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if _, err := listener.ParseStrategy(o.strategy); err != nil {
		return fmt.Errorf("--strategy: %w", err)
	}
	return nil
}
