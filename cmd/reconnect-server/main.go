// Command reconnect-server is the server of gRPC's connection-backoff
// interop test (doc/connection-backoff-interop-test-description.md in
// grpc/grpc), a drop-in for the reference C++ reconnect_interop_server.
//
// The control port serves grpc.testing.ReconnectService in plaintext on
// every address. The retry port, on 0.0.0.0 and [::], opens at the first
// Start and closes every connection at once; Stop judges the gaps between
// the attempts of the client under test.
//
// Usage:
//
//	reconnect-server --control_port 8080 --retry_port 8081 [--timestamps syn|accept]
//	    [--pcap FILE] [--stall DURATION] [--log-format text|json] [--report DIR]
//
// Attempts are timed by their SYN (the kernel's receive time, seen with
// CAP_NET_RAW: root, or setcap cap_net_raw+ep on the binary) when the
// capture works, and at accept(2), as the reference server does, otherwise;
// which and why is logged at start. --timestamps syn, --pcap and --stall
// need the capture: without CAP_NET_RAW the server does not start, and says
// why; --stall also needs a socket filter on the retry port, which kernels
// with kernel.unprivileged_bpf_disabled set refuse without CAP_NET_ADMIN
// (the first Start then fails, naming it). A port of 0 picks a free one.
// SIGINT and SIGTERM stop the server gracefully. With --report, each test's
// result is written to DIR as JSON, with an SVG picture of its attempts.
//
// docs/reconnect.md runs the whole procedure and says where this server
// differs from the reference; package broker/reconnect is the server and
// client for Go.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	pb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/synhold/synhold/broker/reconnect"
	"github.com/synhold/synhold/internal/cli"
	"github.com/synhold/synhold/internal/eventlog"
)

// gracePeriod is how long a graceful stop waits for RPCs in flight.
const gracePeriod = 5 * time.Second

func main() {
	cli.Main(run)
}

// options are the command line's settings.
type options struct {
	controlPort int
	retryPort   int
	timestamps  reconnect.Timestamps
	pcap        string
	stall       time.Duration
	logFormat   string
	reportDir   string
}

// parseArgs parses the command line.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("reconnect-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.controlPort, "control_port", 0, "port of the control service (plaintext gRPC, every address); 0 picks one")
	fs.IntVar(&o.retryPort, "retry_port", 0, "port that closes every connection (0.0.0.0 and [::]); 0 picks one at the first Start")
	ts := fs.String("timestamps", "", "how attempts are timed: syn (kernel SYN time, needs CAP_NET_RAW) or accept (the reference's way); default syn when the capture works, else accept")
	fs.StringVar(&o.pcap, "pcap", "", "write the retry port's handshake packets (SYNs, SYN-ACKs) to this pcap file; needs CAP_NET_RAW")
	fs.DurationVar(&o.stall, "stall", 0, "hold each attempt's handshake this long before accepting and closing it; needs CAP_NET_RAW")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.reportDir, "report", "", "write each test's result (test-N-TIME.json) and picture (test-N-TIME.svg) to this directory, created if needed")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.timestamps, err = reconnect.ParseTimestamps(*ts); err != nil {
		return o, err
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"control_port", o.controlPort}, {"retry_port", o.retryPort}} {
		if p.v < 0 || p.v > 65535 {
			return o, fmt.Errorf("--%s %d out of range", p.name, p.v)
		}
	}
	if o.controlPort != 0 && o.controlPort == o.retryPort {
		return o, fmt.Errorf("--control_port and --retry_port are both %d", o.controlPort)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	return o, nil
}

// run runs the server until ctx is done and returns the exit code: 0 after
// a graceful stop, 1 when the server could not start or failed, 2 for a bad
// command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if code, exit := cli.UsageExit("reconnect-server", err, stderr); exit {
		return code
	}
	log := newLogger(stderr, o.logFormat)
	if err := serve(ctx, o, log, stdout, stderr); err != nil {
		log.Error("reconnect-server: failed", "err", err)
		return 1
	}
	return 0
}

// serve opens the pcap file, the service and the control port, and serves
// until ctx is done. It prints the control port's address on stdout, for
// scripts that pass port 0, and each test's report on report.
func serve(ctx context.Context, o options, log *slog.Logger, stdout, report io.Writer) (err error) {
	cfg := reconnect.Config{
		RetryPort:  o.retryPort,
		Timestamps: o.timestamps,
		Stall:      o.stall,
		Logger:     log,
		Report:     report,
		ReportJSON: o.logFormat == "json",
		ReportDir:  o.reportDir,
	}
	if o.reportDir != "" {
		if err := os.MkdirAll(o.reportDir, 0o755); err != nil {
			return fmt.Errorf("report directory: %w", err)
		}
	}
	if o.pcap != "" {
		f, err := os.Create(o.pcap)
		if err != nil {
			return fmt.Errorf("create pcap file: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("close pcap file: %w", cerr)
			}
		}()
		cfg.Pcap = f
	}
	srv, err := reconnect.NewServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(o.controlPort)))
	if err != nil {
		return fmt.Errorf("listen on control port: %w", err)
	}
	gs := grpc.NewServer()
	pb.RegisterReconnectServiceServer(gs, srv)
	log.Info("reconnect-server: control port listening", "addr", ln.Addr().String(), "retry_port", o.retryPort)
	fmt.Fprintf(stdout, "control %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	select {
	case err := <-errc:
		srv.Close()
		return fmt.Errorf("serve control port: %w", err)
	case <-ctx.Done():
	}
	log.Info("reconnect-server: stopping", "why", context.Cause(ctx))
	if err := srv.Close(); err != nil { // wakes waiting Starts
		log.Warn("reconnect-server: closing the retry port", "err", err)
	}
	stopGracefully(gs, log)
	return nil
}

// stopGracefully lets RPCs in flight finish, for up to gracePeriod.
func stopGracefully(gs *grpc.Server, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(gracePeriod):
		log.Warn("reconnect-server: RPCs still in flight after the grace period; stopping them")
		gs.Stop()
		<-done
	}
	log.Info("reconnect-server: stopped")
}

// newLogger returns a logger writing text or JSON to w; parseArgs has
// checked the format.
func newLogger(w io.Writer, format string) *slog.Logger {
	log, err := eventlog.New(w, format, nil)
	if err != nil {
		panic(err) // parseArgs accepts only text and json
	}
	return log
}
