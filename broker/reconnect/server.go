// Package reconnect implements both ends of gRPC's connection-backoff
// interop test: Server serves grpc.testing.ReconnectService on the control
// port and records every connection attempt on the retry port, and Client
// is the reference client's flow. The analysis of the attempts is package
// backoff's.
//
// A program registers a Server on its own grpc.Server for the control port
// (ExampleServer); the Server opens the retry port itself at the first
// Start. Client runs the test against any reconnect server, this one or the
// reference C++ one (ExampleClient); the reference procedure takes 540 s.
// The reconnect-server and reconnect-client commands are both, with the
// reference's flags; docs/reconnect.md says how to run the test and how
// this server differs from the reference.
//
// # Systems and privileges
//
// Client, and a Server that times attempts at accept(2) as the reference
// does, work everywhere without privilege. A Server times attempts by their
// SYN, the kernel's receive time, where it may capture them: Linux, with
// CAP_NET_RAW (root, or setcap cap_net_raw+ep on the binary). Timestamps
// Auto picks that where it works and accept times elsewhere, and NewServer
// logs which and why. Timestamps SYN, Config.Stall and Config.Pcap need the
// capture: without it NewServer fails, with an error that wraps what
// listener.Probe found (errors.Is(err, os.ErrPermission) without
// CAP_NET_RAW). Config.Stall also needs a socket filter on the retry port,
// which kernels with kernel.unprivileged_bpf_disabled set refuse without
// CAP_NET_ADMIN: there the first Start fails with Unavailable, naming it.
package reconnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/listener"
)

// Timestamps says which instant of a connection attempt times it.
type Timestamps int

const (
	// Auto picks SYN where the SYNs can be captured
	// (Linux, CAP_NET_RAW) and Accept elsewhere.
	Auto Timestamps = iota
	// SYN times an attempt by the kernel's receive time of its
	// first SYN: what the client did, free of the server's scheduling, and
	// unaffected by a stalled handshake. The kernel stamps a SYN received on
	// loopback for each packet socket as it hands the SYN to it, newest
	// socket first: a "tcpdump -i lo" started before the server stamps the
	// same SYN a few µs later, and now and then, on a loaded machine, 1-2
	// ms later, by the time the kernel spent on the sockets in between. The
	// server's time, the earlier, is the nearer to the SYN's arrival.
	SYN
	// Accept times an attempt when accept(2) returns it, as the
	// reference C++ server does.
	Accept
)

var timestampNames = [...]string{"auto", "syn", "accept"}

// String returns "auto", "syn" or "accept".
func (ts Timestamps) String() string {
	if ts < 0 || int(ts) >= len(timestampNames) {
		return fmt.Sprintf("Timestamps(%d)", int(ts))
	}
	return timestampNames[ts]
}

// MarshalText implements encoding.TextMarshaler, for JSON logs.
func (ts Timestamps) MarshalText() ([]byte, error) { return []byte(ts.String()), nil }

// ParseTimestamps parses the names String returns; "" is auto.
func ParseTimestamps(name string) (Timestamps, error) {
	if name == "" {
		return Auto, nil
	}
	for i, n := range timestampNames {
		if strings.EqualFold(name, n) {
			return Timestamps(i), nil
		}
	}
	return Auto, fmt.Errorf("reconnect: unknown timestamps %q (want syn, accept or auto)", name)
}

// Config configures a Server.
type Config struct {
	// RetryPort is the port that closes every connection, on 0.0.0.0 and
	// [::]. 0 picks a free port at the first Start; RetryPort tells which.
	RetryPort int
	// Timestamps says how attempts are timed; see Timestamps.
	Timestamps Timestamps
	// Stall, if positive, holds each attempt's handshake this long after its
	// first SYN before it is accepted and closed. It shows whether a client
	// times its backoff from the start or the failure of an attempt, and
	// makes a client retransmit its SYN when it is longer than the SYN
	// retransmission timeout (1 s). It needs SYN capture and the retry
	// port's socket filter (see the package comment).
	Stall time.Duration
	// Pcap, if set, receives a pcap file of the handshake packets of the
	// retry port (SYNs and SYN-ACKs). It needs SYN capture.
	Pcap io.Writer
	// Logger gets one record per attempt and one per test; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Report, if set, receives each test's analysis as text, for a person.
	Report io.Writer
	// ReportJSON puts each test's whole result in the log record that ends
	// the test (for a JSON log) instead of only its key figures.
	ReportJSON bool
	// ReportDir, if set, is a directory that receives each test's result
	// as JSON and its picture as SVG (see Result.WriteFiles). A failure to
	// write them is logged; the server goes on.
	ReportDir string
	// listen opens a retry listener; listener.Listen when nil. The tests set
	// it to open the retry port in another network namespace.
	listen func(network, address string, cfg listener.Config) (*listener.Held, error)
}

// Server is the server of gRPC's connection-backoff interop test
// (doc/connection-backoff-interop-test-description.md in grpc/grpc): a
// grpc_testing.ReconnectServiceServer for the control port, and the retry
// port, which closes every connection at once and records when each attempt
// came.
//
// As the reference server does, it opens the retry port at the first Start
// and keeps it open; attempts count only between a Start and its Stop; a
// second Start waits until the test in progress ends. Unlike it, Server
// judges each destination address the client tried on its own, leaves out
// attempts from hosts other than the client under test (those of a loopback
// client are every loopback address), times attempts by their SYN where it
// can, and refuses a Stop with no test in progress.
type Server struct {
	pb.UnimplementedReconnectServiceServer

	cfg      Config
	log      *slog.Logger
	ts       Timestamps        // resolved: SYN or Accept
	syn      bool              // SYN times are recorded (capture works)
	strategy listener.Strategy // for the retry listeners
	pcap     *pcapWriter

	slot      chan struct{} // holds a token while a test is in progress
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	listenMu sync.Mutex // serialises opening and closing the retry port
	lns      []*listener.Held
	wg       sync.WaitGroup

	mu      sync.Mutex
	port    int
	test    *session
	tests   int
	results []Result
}

// maxResults bounds the results a Server keeps for Results.
const maxResults = 64

// NewServer checks cfg, decides how attempts are timed and logs which and
// why. The retry port opens at the first Start, as on the reference server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.RetryPort < 0 || cfg.RetryPort > 65535 {
		return nil, fmt.Errorf("reconnect: retry port %d out of range", cfg.RetryPort)
	}
	if cfg.Stall < 0 {
		return nil, fmt.Errorf("reconnect: negative stall %v", cfg.Stall)
	}
	r := &Server{
		cfg:  cfg,
		log:  cfg.Logger,
		port: cfg.RetryPort,
		slot: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.cfg.listen == nil {
		r.cfg.listen = listener.Listen
	}
	why, err := r.resolve()
	if err != nil {
		return nil, err
	}
	if cfg.Pcap != nil {
		if r.pcap, err = newPcapWriter(cfg.Pcap, r.log); err != nil {
			return nil, err
		}
	}
	r.log.Info("reconnect: timestamps", "timestamps", r.ts, "syn_recorded", r.syn, "strategy", r.strategy, "why", why)
	return r, nil
}

// resolve decides the timestamps and the listener strategy from the
// configuration and what listener.Probe says this process can do.
func (r *Server) resolve() (why string, err error) {
	probe, perr := listener.Probe()
	canSYN := probe == listener.Replay
	needSYN := r.cfg.Timestamps == SYN || r.cfg.Stall > 0 || r.cfg.Pcap != nil
	if needSYN && !canSYN {
		return "", fmt.Errorf("reconnect: timestamps syn, --stall and --pcap need SYN capture (strategy replay: Linux, CAP_NET_RAW): %w", perr)
	}
	r.syn = canSYN
	// The strategy Probe found, rather than Auto: Auto would try, and fail
	// at, opening the capture again for every listener.
	r.strategy = probe
	switch {
	case r.cfg.Timestamps == Accept && canSYN:
		r.ts, why = Accept, "asked for accept times (the reference server's way); SYN times are recorded too, for comparison"
	case r.cfg.Timestamps == Accept:
		r.ts, why = Accept, "asked for accept times (the reference server's way)"
	case canSYN:
		r.ts, why = SYN, "SYNs can be captured (CAP_NET_RAW): attempts are timed by the kernel's receive time of their first SYN; accept times are recorded too, for comparison"
	default:
		r.ts, why = Accept, fmt.Sprintf("SYNs cannot be captured (%v): attempts are timed at accept(2), as the reference server does", perr)
	}
	return why, nil
}

// Timestamps returns how attempts are timed, and whether SYN times are
// recorded as well (so that both kinds are, when it says Accept): what
// Timestamps Auto became in this process, for a program that reports it or
// that needs SYN times.
func (r *Server) Timestamps() (ts Timestamps, synRecorded bool) { return r.ts, r.syn }

// RetryPort returns the retry port: the configured one, or the one picked at
// the first Start when it was 0 (0 until then).
func (r *Server) RetryPort() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.port
}

// Results returns the results of the latest finished tests (up to 64),
// oldest first: what a program that runs the server in process, rather than
// reading its log or ReportDir, judges clients by.
func (r *Server) Results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.results...)
}

// Start begins a test of the client that calls it, known by its address. It
// waits while another test is in progress, and returns when the retry port
// takes connections.
func (r *Server) Start(ctx context.Context, req *pb.ReconnectParams) (*pb.Empty, error) {
	client := peerOf(ctx)
	maxMs := req.GetMaxReconnectBackoffMs()
	if maxMs < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "reconnect: Start: max_reconnect_backoff_ms %d is negative", maxMs)
	}
	if err := r.acquire(ctx, client); err != nil {
		return nil, err
	}
	if err := r.openRetry(); err != nil {
		<-r.slot
		r.log.Error("reconnect: cannot open the retry port", "err", err)
		return nil, status.Errorf(codes.Unavailable, "reconnect: Start: %v", err)
	}
	r.begin(client, maxMs)
	return &pb.Empty{}, nil
}

// acquire takes the test slot, waiting for the test in progress to end; a
// caller that goes away or a server that closes gives up waiting.
func (r *Server) acquire(ctx context.Context, client netip.AddrPort) error {
	select {
	case r.slot <- struct{}{}:
	default:
		r.log.Info("reconnect: Start waits for the test in progress to end", "client", client, "testing", r.current())
		select {
		case r.slot <- struct{}{}:
		case <-ctx.Done():
			r.log.Info("reconnect: waiting Start gave up", "client", client, "err", ctx.Err())
			return status.FromContextError(ctx.Err()).Err()
		case <-r.done:
			return status.Error(codes.Unavailable, "reconnect: server shutting down")
		}
	}
	select {
	case <-r.done:
		<-r.slot
		return status.Error(codes.Unavailable, "reconnect: server shutting down")
	default:
	}
	return nil
}

// current returns the client of the test in progress, for logs.
func (r *Server) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.test == nil {
		return "none"
	}
	return r.test.client.String()
}

// begin records that a test of client is in progress.
func (r *Server) begin(client netip.AddrPort, maxMs int32) {
	t := newSession(client, maxMs, r.ts)
	r.mu.Lock()
	r.tests++
	t.n = r.tests
	r.test = t
	port := r.port
	r.mu.Unlock()
	r.log.Info("reconnect: test started", "test", t.n, "client", client, "loopback_client", t.loopback(),
		"max_reconnect_backoff_ms", t.policy.Max.Milliseconds(), "retry_port", port, "timestamps", r.ts)
}

// Stop ends the test in progress and returns the verdict on the attempts of
// the client under test and the gaps of the first address it tried. Without
// a test in progress it fails with FailedPrecondition.
func (r *Server) Stop(ctx context.Context, _ *pb.Empty) (*pb.ReconnectInfo, error) {
	r.mu.Lock()
	t := r.test
	r.test = nil
	r.mu.Unlock()
	if t == nil {
		return nil, status.Error(codes.FailedPrecondition,
			"reconnect: Stop: no test in progress (call Start first; a test ends at its first Stop)")
	}
	res := t.result(time.Now(), r.syn)
	r.mu.Lock()
	r.results = append(r.results, res)
	if len(r.results) > maxResults {
		r.results = r.results[len(r.results)-maxResults:]
	}
	r.mu.Unlock()
	r.report(res, peerOf(ctx))
	<-r.slot
	return &pb.ReconnectInfo{Passed: res.Passed, BackoffMs: res.BackoffMs}, nil
}

// Close closes the retry port and wakes every waiting Start, which fails with
// Unavailable. A test in progress is abandoned. The control port's gRPC
// server is the caller's to stop.
func (r *Server) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.listenMu.Lock()
		var errs []error
		for _, ln := range r.lns {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		r.listenMu.Unlock()
		r.wg.Wait()
		r.mu.Lock()
		t := r.test
		r.test = nil
		r.mu.Unlock()
		if t != nil {
			r.log.Warn("reconnect: server closed with a test in progress", "test", t.n, "client", t.client)
		}
		if err := errors.Join(errs...); err != nil {
			r.closeErr = fmt.Errorf("reconnect: close retry port: %w", err)
		}
	})
	return r.closeErr
}

// closed reports whether Close was called.
func (r *Server) closed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// peerOf returns the address of the gRPC peer of ctx, unmapped, or the zero
// AddrPort when it is unknown.
func peerOf(ctx context.Context) netip.AddrPort {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.AddrPort{}
	}
	return addrPortOf(p.Addr)
}

// addrPortOf converts a net.Addr of TCP to an AddrPort with the IPv4-mapped
// form and the zone removed, or the zero AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netaddr.Canonical(ap)
}
