// Package proxy is the control plane of a TCP proxy that speaks Toxiproxy's
// HTTP API (v2.12.0: the same routes, methods, JSON, status codes, headers
// and error bodies, and its Prometheus metrics, so toxiproxy's clients work
// unchanged) and adds the toxics Toxiproxy cannot
// have: handshake_delay, handshake_hold and handshake_refuse, which act on
// the TCP handshake itself.
//
// Each proxy accepts on a held listener (package listener) and forwards every
// connection to its upstream through toxiproxy's own toxic links, so every
// toxiproxy toxic behaves as toxiproxy documents it. Toxiproxy accepts every
// connection in user space, after the kernel has completed the handshake;
// here the SYN itself is held, replayed at its instant, or refused.
//
// NewServer returns a Server, an http.Handler that serves the API: put it
// on an http.Server (toxiproxy's address is localhost:8474), create proxies
// through the API or Populate, and Close the proxies when done. It is what
// the handshake-proxy command runs; the package's Example drives it with
// toxiproxy's Go client. docs/handshake-proxy.md lists the toxics, the
// routes, the metrics and the logs.
//
// # Systems and privileges
//
// The data toxics work everywhere, without privilege. The handshake toxics
// hold SYNs with package listener, on Linux only:
//
//   - handshake_delay, handshake_refuse and a handshake_hold with toxicity
//     below 1 decide each connection on its own SYN, which needs strategy
//     replay: CAP_NET_RAW (root, or setcap cap_net_raw+ep on the binary),
//     and a socket filter on the proxy's listening socket, which kernels
//     with kernel.unprivileged_bpf_disabled set refuse without
//     CAP_NET_ADMIN.
//   - Without CAP_NET_RAW, or without the filter, the proxies run with
//     strategy retransmit: the API refuses those toxics with 501 Not
//     Implemented and a message naming what is missing; handshake_hold
//     (toxicity 1) still holds every SYN, and removing it completes each
//     held handshake at that client's next SYN retransmission (Linux
//     clients retransmit 1, 3, 7 s... after the SYN).
//   - On other systems the API refuses every handshake toxic with 501.
//
// NewServer logs, as "handshake toxics", which of them can run here.
// Config.Strategy listener.Replay makes NewServer fail instead where they
// cannot all run.
package proxy

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"

	"github.com/synhold/synhold/internal/buildinfo"
	"github.com/synhold/synhold/listener"
)

// Version is the toxiproxy API version served, which GET /version answers
// (as {"version": "2.12.0"}). The synhold build serving it is in each
// answer's X-Synhold-Version header.
const Version = "2.12.0"

// versionHeader carries the synhold version on every answer.
const versionHeader = "X-Synhold-Version"

// Config configures a Server.
type Config struct {
	// Logger gets one line per event; slog.Default() if nil.
	Logger *slog.Logger
	// Strategy is how proxies hold handshakes; listener.Auto (the best this
	// host and privileges allow) by default.
	Strategy listener.Strategy
	// Seed seeds the draws of handshake toxics' toxicity and jitter; 0 picks
	// a random seed.
	Seed uint64
	// ProxyMetrics serves GET /metrics with toxiproxy's per-proxy byte
	// counters (toxiproxy_proxy_received_bytes_total, ..._sent_bytes_total)
	// and the handshake toxics' own (synhold_handshake_...): toxiproxy-server's
	// -proxy-metrics.
	ProxyMetrics bool
	// RuntimeMetrics serves GET /metrics with the Go runtime's and the
	// process's metrics (go_*, process_*): toxiproxy-server's -runtime-metrics.
	RuntimeMetrics bool
	// BuildVersion is the synhold version sent in every answer's
	// X-Synhold-Version header; the module's build information if empty.
	// A program that builds synhold from a local copy (a replace directive),
	// for which the build information says only "devel", sets it to say
	// which synhold it serves.
	BuildVersion string
}

// Server is the proxies and their HTTP API. It is an http.Handler.
type Server struct {
	log     *slog.Logger
	support support
	rng     randSource
	tp      *toxiproxy.ApiServer // toxiproxy's links need one; it counts their bytes
	metrics *metrics             // nil: no /metrics
	build   string               // X-Synhold-Version
	handler http.Handler

	mu      sync.Mutex // serializes the API
	proxies map[string]*forwarder
}

// NewServer returns a Server with no proxies. It fails if cfg.Strategy
// cannot run here.
func NewServer(cfg Config) (*Server, error) {
	sup, err := probeSupport(cfg.Strategy)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:     cfg.Logger,
		support: sup,
		tp:      toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: make(map[string]*forwarder),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.build = cmp.Or(cfg.BuildVersion, buildinfo.Version())
	if cfg.ProxyMetrics || cfg.RuntimeMetrics {
		s.metrics = newMetrics(cfg.ProxyMetrics, cfg.RuntimeMetrics)
		s.tp.Metrics.ProxyMetrics = s.metrics.bytes // nil without ProxyMetrics
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s.rng = newLockedRand(seed)
	s.handler = s.routes()
	s.log.Info("handshake toxics", "strategy", sup.strategy, "can", sup.describe())
	return s, nil
}

// ServeHTTP serves toxiproxy's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(versionHeader, s.build)
	s.handler.ServeHTTP(w, r)
}

// Populate creates or replaces the proxies a JSON array describes, as POST
// /populate does (the format of toxiproxy-server's -config file).
func (s *Server) Populate(r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	proxies, err := s.populate(r)
	if err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	s.log.Info("populated proxies", "proxies", len(proxies))
	return nil
}

// Close stops every proxy: their listeners and connections are closed.
// The API then answers as if there were no proxies.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.proxies))
	for n := range s.proxies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s.proxies[n].stop()
		delete(s.proxies, n)
	}
	return nil
}

// proxyInput is a proxy as the API takes it.
type proxyInput struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

// proxyView is a proxy as the API shows it, in toxiproxy's field order.
type proxyView struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
	// Logger is toxiproxy's exported *zerolog.Logger, which its API
	// marshals as {}: kept, so that bodies match byte for byte.
	Logger struct{}       `json:"Logger"`
	Toxics []toxics.Toxic `json:"toxics"`
}
