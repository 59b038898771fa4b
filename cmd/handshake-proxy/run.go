package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/synhold/synhold/broker/proxy"
	"github.com/synhold/synhold/internal/buildinfo"
	"github.com/synhold/synhold/internal/eventlog"
	"github.com/synhold/synhold/listener"
)

// options are the parsed command line.
type options struct {
	host, port string
	config     string
	seed       uint64
	strategy   listener.Strategy
	logFormat  string
	version    bool
	// proxyMetrics and runtimeMetrics serve GET /metrics, as
	// toxiproxy-server's flags of the same names.
	proxyMetrics, runtimeMetrics bool
}

// run is the whole program, callable in-process by tests; started, if set,
// gets the API's address once it listens. It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, started func(net.Addr)) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "handshake-proxy: %v\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintf(stdout, "handshake-proxy version %s, toxiproxy API version %s\n", buildinfo.Version(), proxy.Version)
		return 0
	}
	log, err := newLogger(o.logFormat, os.Getenv("LOG_LEVEL"), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "handshake-proxy: %v\n", err)
		return 2
	}
	if err := serve(ctx, o, log, started); err != nil {
		log.Error("handshake-proxy failed", "err", err)
		return 1
	}
	return 0
}

// parseArgs parses and checks the command line.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	var strategy string
	fs := flag.NewFlagSet("handshake-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.host, "host", "localhost", "host for the API to listen on")
	fs.StringVar(&o.port, "port", "8474", "port for the API to listen on")
	fs.StringVar(&o.config, "config", "", "JSON `file` of proxies to create at start (toxiproxy's format)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed for the handshake toxics' toxicity and jitter draws (0: random)")
	fs.StringVar(&strategy, "strategy", "auto", "how handshakes are held: auto, replay or retransmit")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.runtimeMetrics, "runtime-metrics", false, "serve GET /metrics with the Go runtime's and the process's metrics")
	fs.BoolVar(&o.proxyMetrics, "proxy-metrics", false, "serve GET /metrics with each proxy's byte and handshake counters")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	s, err := listener.ParseStrategy(strategy)
	if err != nil {
		return o, fmt.Errorf("--strategy: %w", err)
	}
	if s == listener.DelayedListen {
		return o, errors.New("--strategy delayed-listen cannot hold a handshake again once released: want auto, replay or retransmit")
	}
	o.strategy = s
	return o, nil
}

// newLogger returns a logger writing format ("text" or "json") to w, from
// level on (toxiproxy-server's LOG_LEVEL: debug, info, warn or error; debug
// adds a line per connection).
func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", level)
		}
	}
	return eventlog.New(w, format, lv)
}

// serve runs the API until ctx ends, then stops every proxy.
func serve(ctx context.Context, o options, log *slog.Logger, started func(net.Addr)) error {
	s, err := proxy.NewServer(proxy.Config{Logger: log, Strategy: o.strategy, Seed: o.seed,
		ProxyMetrics: o.proxyMetrics, RuntimeMetrics: o.runtimeMetrics})
	if err != nil {
		return err
	}
	defer s.Close()
	if o.config != "" {
		// As toxiproxy-server: a bad file is logged, the API still serves.
		if err := populateFile(s, o.config); err != nil {
			log.Error("proxies not populated from the config file", "config", o.config, "err", err)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, o.port))
	if err != nil {
		return fmt.Errorf("API: %w", err)
	}
	log.Info("API listening", "addr", ln.Addr().String(), "version", buildinfo.Version(),
		"toxiproxy_api", proxy.Version, "metrics", o.proxyMetrics || o.runtimeMetrics)
	if started != nil {
		started(ln.Addr())
	}
	// toxiproxy-server's timeouts (api.go: read 15 s, write 30 s, idle 60 s).
	srv := &http.Server{Handler: s, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 60 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("API: %w", err)
	case <-ctx.Done():
	}
	// As toxiproxy-server on SIGINT or SIGTERM: stop taking requests, let
	// those under way finish (30 s at most), then stop every proxy.
	log.Info("shutdown started")
	shut, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(shut)
	<-done
	s.Close()
	log.Info("shutdown finished")
	return err
}

func populateFile(s *proxy.Server, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.Populate(f)
}
