// Package happyeyeballs implements the control server of the Happy Eyeballs
// test server, and a client for its protocol. A driver's test asks the
// server for a port pair (one byte on the control port), dials both
// addresses with its own Happy Eyeballs code, and checks that the family the
// server made fast won: the handshakes on both sides are held, the fast
// side's until FastDelay after the server handed the pair out (just before
// its reply), the slow side's until SlowDelay after. When a pair closes the
// server judges what the client did against RFC 8305 (see Judgement).
//
// Server is what the happyeyeballs-server command runs, and a test can run
// one in its own process (ExampleServer); Client is what a driver's test in
// Go uses to speak to either (ExampleClient_Pair, ExampleClient_Judgement). docs/happyeyeballs-server.md describes the
// protocol's bytes, the log lines and the judgements.
//
// # Systems and privileges
//
// Client works everywhere, without privilege. Server holds the handshakes
// with package listener, and what a client meets depends on what the server
// process may do (the "pair requested" log line's strategy says which):
//
//   - On Linux with CAP_NET_RAW (root, or setcap cap_net_raw+ep on the
//     binary), strategy replay: each side completes its handshakes within
//     ~0.1 ms of its instant, and the server sees every SYN, so it judges
//     the client.
//   - On Linux without it, strategy retransmit: each side completes at the
//     client's first SYN retransmission after its instant (1 s after the
//     SYN, then 3 s, 7 s...), so with the default delays both sides may
//     complete at once; the server sees no SYNs, and every Judgement is
//     Unknown.
//   - Elsewhere, strategy delayed-listen: a side refuses connections until
//     its instant, which delays only clients whose stack retries a refused
//     SYN (Windows, macOS); the judgements are Unknown.
//
// Config.Strategy asks for one; a pair the server cannot open is answered
// 0x00 (ErrRefused on the Client's side), and the server's log says why.
package happyeyeballs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/synhold/synhold/listener"
)

// Defaults of the Config fields left zero.
const (
	DefaultFastDelay   = time.Second
	DefaultSlowDelay   = 2 * time.Second
	DefaultPairTimeout = 30 * time.Second
	DefaultIdleTimeout = 5 * time.Second
)

// Config configures a Server. Durations left zero take the defaults above.
type Config struct {
	// FastDelay is when the fast side's handshakes complete, after the
	// pair was handed out (just before the reply; a spare was opened
	// earlier).
	FastDelay time.Duration
	// SlowDelay is when the slow side's handshakes complete, counted as
	// FastDelay is.
	SlowDelay time.Duration
	// PairTimeout closes a pair nobody connected to.
	PairTimeout time.Duration
	// IdleTimeout closes a control connection that sends nothing.
	IdleTimeout time.Duration
	// SamePort makes 0x04 and 0x06 behave like 0x14 and 0x16: both families
	// on one port number, as a known fork of the original does.
	SamePort bool
	// Strategy is how the pairs' listeners hold handshakes: listener.Auto
	// (the zero value) picks the best this process may do (see the package
	// comment).
	Strategy listener.Strategy
	// Spares is how many pairs are kept open ahead of requests, so that a
	// reply does not wait for two listeners to be opened (0.4-1 ms, more on
	// a busy machine). A spare's clock starts when it is handed out, as if
	// it were opened then. Zero keeps none: every request opens its pair
	// (happyeyeballs-server's --spares defaults to 1). Spares are of the
	// kind SamePort says; other requests get a pair opened on demand.
	Spares int
	// Logger receives one line per event; slog.Default() if nil.
	Logger *slog.Logger
}

// Server is the control server of the Happy Eyeballs test server, a
// drop-in for the original Python server used by driver tests. Each control
// connection carries one request byte (0x04, 0x06, 0x14 or 0x16 a pair,
// 0xF0 a ping, 0xFF a shutdown, 0xE0 and a port a pair's Judgement); a
// pair request gets an IPv4 listener on 127.0.0.1 and an IPv6 listener on
// ::1 whose handshakes are held: the fast side's complete FastDelay after
// the pair was handed out, the slow side's SlowDelay after. The first connection
// accepted on either side reads one byte naming its family, then the pair
// closes. A client that dials both families therefore proves it picked the
// faster one by timing, not by a refusal.
type Server struct {
	cfg Config // defaults filled in
	log *slog.Logger

	// listen opens one held listener; the fuzz target replaces it so that
	// it opens no sockets.
	listen listenFunc

	done chan struct{}
	wg   sync.WaitGroup // control connections and pair goroutines

	mu      sync.Mutex
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[net.Conn]struct{}
	pairs   map[*pair]struct{}
	lastID  uint64
	spares  []*pair // opened ahead, not handed out yet
	filling bool    // a goroutine is opening spares

	// The judgements: for 0xE0, the pair open on each IPv4 port and the
	// judgement of the latest pair closed on it (the pair itself is not
	// kept); the counts; the first pairs' reports.
	byPort   map[uint16]*pair
	judgedOn map[uint16]Judgement
	summary  Summary
	reported []PairReport
	omitted  int

	summaryOnce sync.Once
}

// NewServer checks cfg and returns a server ready to Serve.
func NewServer(cfg Config) (*Server, error) {
	if cfg.FastDelay < 0 || cfg.SlowDelay < 0 || cfg.PairTimeout < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("happyeyeballs: delays and timeouts must not be negative")
	}
	if cfg.Spares < 0 {
		return nil, fmt.Errorf("happyeyeballs: Spares %d: want 0 (none) or more", cfg.Spares)
	}
	cfg.FastDelay = orDefault(cfg.FastDelay, DefaultFastDelay)
	cfg.SlowDelay = orDefault(cfg.SlowDelay, DefaultSlowDelay)
	cfg.PairTimeout = orDefault(cfg.PairTimeout, DefaultPairTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.FastDelay >= cfg.SlowDelay {
		return nil, fmt.Errorf("happyeyeballs: fast delay %v must be shorter than slow delay %v", cfg.FastDelay, cfg.SlowDelay)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		listen:   listenHeld,
		done:     make(chan struct{}),
		lns:      make(map[net.Listener]struct{}),
		conns:    make(map[net.Conn]struct{}),
		pairs:    make(map[*pair]struct{}),
		byPort:   make(map[uint16]*pair),
		judgedOn: make(map[uint16]Judgement),
		summary:  newSummary(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// heldListener is what a pair needs of a held listener; *listener.Held is one.
type heldListener interface {
	Accept() (net.Conn, error)
	Close() error
	AddrPort() netip.AddrPort
	ReleaseAt(t time.Time)
	Strategy() listener.Strategy
	Handshake(client netip.AddrPort) (listener.Handshake, bool)
}

// listenFunc opens one held listener, like listener.Listen.
type listenFunc func(network, address string, cfg listener.Config) (heldListener, error)

// listenHeld is the real listenFunc.
func listenHeld(network, address string, cfg listener.Config) (heldListener, error) {
	h, err := listener.Listen(network, address, cfg)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// errClosed is why a request that raced with shutdown got no pair.
var errClosed = errors.New("happyeyeballs: server is shutting down")

// Done returns a channel closed once the server stops: when a 0xFF request
// arrived (after its pairs were closed), or when Shutdown was called.
func (s *Server) Done() <-chan struct{} {
	return s.done
}

// Serve accepts control connections on ln and serves each in its own
// goroutine, until the server stops; it then returns nil. It may be called
// for several listeners at once (the binary serves 127.0.0.1 and ::1). ln
// is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return nil
	}
	defer s.untrack(ln)
	s.fill()
	s.log.Debug("serving control connections", "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("happy eyeballs: accept on %v: %w", ln.Addr(), err)
			}
			backoff = nextBackoff(backoff)
			s.log.Warn("control accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startConn(c)
	}
}

// temporary reports whether an accept error passes with time, such as a
// lack of descriptors.
func temporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

// nextBackoff doubles the accept retry delay, from 5 ms up to 1 s.
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// Shutdown stops the server: it stops accepting control connections, cuts
// short the ones waiting for their byte, closes every pair, then waits
// until every goroutine of the server has returned, or ctx is done. Once
// they have, it logs the run's summary ("happy eyeballs summary": how many
// pairs got each verdict and named each deviation), once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop("shutdown")
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		s.summaryOnce.Do(func() {
			s.log.Info("happy eyeballs summary", s.Report().Summary.logArgs()...)
		})
		return nil
	case <-ctx.Done():
		return fmt.Errorf("happy eyeballs: shutdown: %w", ctx.Err())
	}
}

// stop closes the pairs, cuts waiting control connections short, closes
// Done, and closes the control listeners last: a client that finds the
// control port refusing (Client.Stop, --stop) then knows the pairs are
// closed and Done is. A control connection accepted meanwhile is closed at
// once. It does not wait, so that a request handler may call it.
func (s *Server) stop(why string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	lns, conns, pairs, spares := keys(s.lns), keys(s.conns), keys(s.pairs), s.spares
	s.spares = nil
	s.mu.Unlock()
	for _, p := range spares {
		p.closeListeners()
	}
	now := time.Now()
	for _, c := range conns {
		c.SetReadDeadline(now)
	}
	for _, p := range pairs {
		p.close("server " + why)
	}
	s.log.Info("happy eyeballs server stopped", "why", why, "pairs_closed", len(pairs))
	close(s.done)
	for _, ln := range lns {
		ln.Close()
	}
}

// takeSpare returns a spare pair of the kind samePort says, or nil. The
// caller calls fill once it has replied, so that opening the next spare
// does not compete with the reply for the CPU.
func (s *Server) takeSpare(samePort bool) *pair {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.spares) == 0 || s.spares[0].samePort != samePort {
		return nil
	}
	p := s.spares[0]
	s.spares = s.spares[1:]
	return p
}

// fill has spares opened until there are Spares of them.
func (s *Server) fill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fillLocked()
}

// fillLocked is fill with s.mu held.
func (s *Server) fillLocked() {
	if s.filling || s.closing || len(s.spares) >= s.cfg.Spares {
		return
	}
	s.filling = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for s.openSpare() {
		}
	}()
}

// openSpare opens one spare; false once there are enough, the server is
// stopping, or opening failed (the next request retries).
func (s *Server) openSpare() bool {
	p, err := s.openPair(s.cfg.SamePort)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.log.Warn("spare pair not opened; requests open their own", "err", err)
	case s.closing:
		p.closeListeners()
	default:
		s.spares = append(s.spares, p)
		if len(s.spares) < s.cfg.Spares {
			return true
		}
	}
	s.filling = false
	return false
}

func keys[K comparable](m map[K]struct{}) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track registers a control listener; false once the server is stopping.
func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.lns[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.lns, ln)
	s.mu.Unlock()
	ln.Close()
}

// startConn serves control connection c in a goroutine of its own, unless
// the server is stopping.
func (s *Server) startConn(c net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.forgetConn(c)
		s.serveConn(c)
	}()
}

func (s *Server) forgetConn(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// orDefault returns d, or def if d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
