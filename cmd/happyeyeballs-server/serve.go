package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/listener"
)

// shutdownGrace bounds how long a stopping server waits for its control
// connections and pairs to wind down.
const shutdownGrace = 5 * time.Second

// serve runs the server until ctx is done, a 0xFF request arrives or a
// control listener fails.
func serve(ctx context.Context, o options, logger *slog.Logger) error {
	if err := applyTuning(os.Getenv); err != nil {
		return err
	}
	strategy, why, perr := resolveStrategy(o.strategy)
	if strategy == listener.Auto {
		return perr
	}
	hold, err := checkHold(strategy)
	if err != nil {
		return err
	}
	var niceErr error
	if o.nice != 0 {
		niceErr = setNice(o.nice)
	}
	srv, err := happyeyeballs.NewServer(happyeyeballs.Config{
		FastDelay: o.fast, SlowDelay: o.slow,
		PairTimeout: o.pairTimeout, IdleTimeout: o.idleTimeout,
		SamePort: o.samePort, Strategy: strategy, Logger: logger,
		Spares: o.spares,
	})
	if err != nil {
		return err
	}
	if o.reportDir != "" { // fail now, not after a run whose report has nowhere to go
		if err := os.MkdirAll(o.reportDir, 0o755); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	lns, err := listenControl(o.port)
	if err != nil {
		return err
	}
	logStart(logger, lns, o, strategy, hold, why, perr, niceErr)
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
	err = waitStop(ctx, srv, errc, logger)
	logClock(logger)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(sctx))
	if o.reportDir != "" {
		err = errors.Join(err, writeReport(o.reportDir, srv.Report(), logger))
	}
	return err
}

// waitStop blocks until the server should stop, and says why in the log.
func waitStop(ctx context.Context, srv *happyeyeballs.Server, errc <-chan error, logger *slog.Logger) error {
	select {
	case <-ctx.Done():
		logger.Info("signal received; shutting down")
		return nil
	case <-srv.Done():
		return nil
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("serve control port: %w", err)
		}
		return nil
	}
}

// logStart writes the start-up line: where, how slow, and how handshakes
// are held and why.
func logStart(logger *slog.Logger, lns []net.Listener, o options, s listener.Strategy, hold, why string, perr, niceErr error) {
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	attrs := []any{
		"control", addrs, "fast_delay", o.fast.String(), "slow_delay", o.slow.String(),
		"pair_timeout", o.pairTimeout.String(), "idle_timeout", o.idleTimeout.String(),
		"same_port", o.samePort, "spares", o.spares, "strategy", s.String(), "hold", hold, "why", why,
	}
	if perr != nil {
		attrs = append(attrs, "probe", perr.Error())
	}
	switch {
	case o.nice == 0 || errors.Is(niceErr, errors.ErrUnsupported):
	case niceErr != nil:
		attrs = append(attrs, "nice", 0, "nice_why", niceErr.Error())
	default:
		attrs = append(attrs, "nice", o.nice)
	}
	// How the thread that releases handshakes is scheduled: SCHED_FIFO keeps
	// a busy machine from delaying releases; it needs CAP_SYS_NICE.
	if policy, err := releaseclock.Scheduling(); !errors.Is(err, errors.ErrUnsupported) {
		attrs = append(attrs, "clock", policy)
		if err != nil {
			attrs = append(attrs, "clock_why", err.Error())
		}
	}
	logger.Info("happy eyeballs server ready", attrs...)
}

// resolveStrategy turns the --strategy name into the strategy the pairs
// use, with a sentence saying why and what to expect. Auto is resolved
// here, through listener.Probe, so that every pair uses the same strategy
// and the start-up line can tell. It returns Auto only with an error that
// stops the server; otherwise the error is the probe's, for the log.
func resolveStrategy(name string) (listener.Strategy, string, error) {
	s, err := listener.ParseStrategy(name)
	if err != nil {
		return listener.Auto, "", fmt.Errorf("--strategy: %w", err)
	}
	probed, perr := listener.Probe()
	switch {
	case s == listener.Auto:
		return probed, strategyWhy(probed, perr, false), perr
	case s == listener.Replay && probed != listener.Replay:
		return listener.Auto, "", fmt.Errorf("--strategy replay: %w%s", perr, capHint(perr))
	}
	return s, strategyWhy(s, perr, true), nil
}

// capHint suggests the fix for a missing CAP_NET_RAW.
func capHint(err error) string {
	if errors.Is(err, os.ErrPermission) {
		return " (needs CAP_NET_RAW: run as root or setcap cap_net_raw+ep on the binary)"
	}
	return ""
}

// strategyWhy explains a strategy choice in one sentence.
func strategyWhy(s listener.Strategy, perr error, forced bool) string {
	how := map[listener.Strategy]string{
		listener.Replay:        "held SYNs are captured and replayed at the instant; handshakes complete within about 0.1 ms of it",
		listener.Retransmit:    "handshakes complete at the client's first SYN retransmission after the instant (Linux clients resend every 1 s at first)",
		listener.DelayedListen: "listen(2) is called at the instant, the original server's way; clients on Windows and macOS retry until then, Linux clients are refused",
	}[s]
	switch {
	case forced:
		return s.String() + " (forced by --strategy): " + how
	case s == listener.Retransmit && errors.Is(perr, os.ErrPermission):
		return "retransmit: capture needs CAP_NET_RAW (run as root or setcap cap_net_raw+ep on the binary); " + how
	case perr != nil && s != listener.Replay:
		return fmt.Sprintf("%v: replay unavailable on %s (%v); %s", s, runtime.GOOS, perr, how)
	}
	return s.String() + ": " + how
}

// checkHold opens and closes one held listener with strategy s, so that a
// server that cannot hold handshakes says so at start-up instead of
// answering every pair request with 0x00. It returns how SYNs are held: a
// BPF filter, or a full accept queue where the kernel refuses the filter.
func checkHold(s listener.Strategy) (string, error) {
	h, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: s})
	if err != nil {
		return "", fmt.Errorf("cannot hold handshakes with strategy %v: %w%s", s, err, holdHint(s, err))
	}
	return h.Mechanism(), h.Close()
}

// holdHint suggests a way out when the kernel refused to hold handshakes.
func holdHint(s listener.Strategy, err error) string {
	if s == listener.DelayedListen || !errors.Is(err, os.ErrPermission) {
		return ""
	}
	return " (run as root, or setcap cap_net_raw+ep on the binary;" +
		" or --strategy delayed-listen, the original's way, which Linux clients see as refused until the instant)"
}

// listenControl opens the control port on 127.0.0.1 and ::1. With port 0
// both get the same port number, chosen on 127.0.0.1.
func listenControl(port int) ([]net.Listener, error) {
	var err error
	for range 8 {
		var lns []net.Listener
		if lns, err = listenBoth(port); err == nil || port != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return lns, err
		}
	}
	return nil, err
}

// listenBoth opens 127.0.0.1:port, then ::1 on the port number it got.
func listenBoth(port int) ([]net.Listener, error) {
	ln4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("control port: %w", err)
	}
	p := ln4.Addr().(*net.TCPAddr).Port
	ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(p)))
	if err != nil {
		ln4.Close()
		return nil, fmt.Errorf("control port: %w", err)
	}
	return []net.Listener{ln4, ln6}, nil
}
