// Package broker implements the toolkit's control-plane protocols: servers
// that hand out listeners on request and report what happened on them.
package broker

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

// Defaults of the HappyEyeballs fields left zero.
const (
	DefaultHappyEyeballsFastDelay   = time.Second
	DefaultHappyEyeballsSlowDelay   = 2 * time.Second
	DefaultHappyEyeballsPairTimeout = 30 * time.Second
	DefaultHappyEyeballsIdleTimeout = 5 * time.Second
)

// HappyEyeballs is the control server of the Happy Eyeballs test server, a
// drop-in for the original Python server used by driver tests. Each control
// connection carries one request byte (see ParseHappyEyeballsRequest); a
// pair request gets an IPv4 listener on 127.0.0.1 and an IPv6 listener on
// ::1 whose handshakes are held: the fast side's complete FastDelay after the
// ports were bound, the slow side's SlowDelay after. The first connection
// accepted on either side reads one byte naming its family, then the pair
// closes. A client that dials both families therefore proves it picked the
// faster one by timing, not by a refusal.
//
// The zero value is ready to use; set the fields before the first Serve.
type HappyEyeballs struct {
	// FastDelay is when the fast side's handshakes complete, after the bind.
	FastDelay time.Duration
	// SlowDelay is when the slow side's handshakes complete, after the bind.
	SlowDelay time.Duration
	// PairTimeout closes a pair nobody connected to.
	PairTimeout time.Duration
	// IdleTimeout closes a control connection that sends nothing.
	IdleTimeout time.Duration
	// SamePort makes 0x04 and 0x06 behave like 0x14 and 0x16: both families
	// on one port number, as a known fork of the original does.
	SamePort bool
	// Strategy is how the pairs' listeners hold handshakes.
	Strategy listener.Strategy
	// Logger receives one line per event; slog.Default() if nil.
	Logger *slog.Logger

	// listen opens one held listener; the fuzz target replaces it so that
	// it opens no sockets. Nil means listener.Listen.
	listen heListenFunc

	initOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup // control connections and pair goroutines

	mu      sync.Mutex
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[net.Conn]struct{}
	pairs   map[*hePair]struct{}
	lastID  uint64
}

// heListener is what a pair needs of a held listener; *listener.Held is one.
type heListener interface {
	Accept() (net.Conn, error)
	Close() error
	AddrPort() netip.AddrPort
	ReleaseAt(t time.Time)
	Strategy() listener.Strategy
	Handshake(client netip.AddrPort) (listener.Handshake, bool)
}

// heListenFunc opens one held listener, like listener.Listen.
type heListenFunc func(network, address string, cfg listener.Config) (heListener, error)

// heListenHeld is the real heListenFunc.
func heListenHeld(network, address string, cfg listener.Config) (heListener, error) {
	h, err := listener.Listen(network, address, cfg)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// errHEClosed is why a request that raced with shutdown got no pair.
var errHEClosed = errors.New("broker: happy eyeballs server is shutting down")

func (s *HappyEyeballs) init() {
	s.initOnce.Do(func() {
		s.done = make(chan struct{})
		s.lns = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
		s.pairs = make(map[*hePair]struct{})
	})
}

// Done returns a channel closed once the server stops: when a 0xFF request
// arrived (after its pairs were closed), or when Shutdown was called.
func (s *HappyEyeballs) Done() <-chan struct{} {
	s.init()
	return s.done
}

// Serve accepts control connections on ln and serves each in its own
// goroutine, until the server stops; it then returns nil. It may be called
// for several listeners at once (the binary serves 127.0.0.1 and ::1). ln
// is closed when Serve returns.
func (s *HappyEyeballs) Serve(ln net.Listener) error {
	s.init()
	if !s.track(ln) {
		ln.Close()
		return nil
	}
	defer s.untrack(ln)
	s.logger().Debug("serving control connections", "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if !heTemporary(err) {
				return fmt.Errorf("happy eyeballs: accept on %v: %w", ln.Addr(), err)
			}
			backoff = heNextBackoff(backoff)
			s.logger().Warn("control accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startConn(c)
	}
}

// heTemporary reports whether an accept error passes with time, such as a
// lack of descriptors.
func heTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

// heNextBackoff doubles the accept retry delay, from 5 ms up to 1 s.
func heNextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// Shutdown stops the server: it stops accepting control connections, cuts
// short the ones waiting for their byte, closes every pair, then waits
// until every goroutine of the server has returned, or ctx is done.
func (s *HappyEyeballs) Shutdown(ctx context.Context) error {
	s.init()
	s.stop("shutdown")
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("happy eyeballs: shutdown: %w", ctx.Err())
	}
}

// stop closes the control listeners and the pairs, cuts waiting control
// connections short and closes Done. It does not wait, so that a request
// handler may call it.
func (s *HappyEyeballs) stop(why string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	lns, conns, pairs := heKeys(s.lns), heKeys(s.conns), heKeys(s.pairs)
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	now := time.Now()
	for _, c := range conns {
		c.SetReadDeadline(now)
	}
	for _, p := range pairs {
		p.close("server " + why)
	}
	s.logger().Info("happy eyeballs server stopped", "why", why, "pairs_closed", len(pairs))
	close(s.done)
}

func heKeys[K comparable](m map[K]struct{}) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func (s *HappyEyeballs) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track registers a control listener; false once the server is stopping.
func (s *HappyEyeballs) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.lns[ln] = struct{}{}
	return true
}

func (s *HappyEyeballs) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.lns, ln)
	s.mu.Unlock()
	ln.Close()
}

// startConn serves control connection c in a goroutine of its own, unless
// the server is stopping.
func (s *HappyEyeballs) startConn(c net.Conn) {
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

func (s *HappyEyeballs) forgetConn(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *HappyEyeballs) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *HappyEyeballs) fastDelay() time.Duration {
	return heOr(s.FastDelay, DefaultHappyEyeballsFastDelay)
}

func (s *HappyEyeballs) slowDelay() time.Duration {
	return heOr(s.SlowDelay, DefaultHappyEyeballsSlowDelay)
}

func (s *HappyEyeballs) pairTimeout() time.Duration {
	return heOr(s.PairTimeout, DefaultHappyEyeballsPairTimeout)
}

func (s *HappyEyeballs) idleTimeout() time.Duration {
	return heOr(s.IdleTimeout, DefaultHappyEyeballsIdleTimeout)
}

func (s *HappyEyeballs) listenFunc() heListenFunc {
	if s.listen != nil {
		return s.listen
	}
	return heListenHeld
}

// heOr returns d, or def if d is not positive.
func heOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
