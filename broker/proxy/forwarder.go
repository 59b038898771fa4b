package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// dialUpstream connects to a proxy's upstream. A variable for fault
// injection.
var dialUpstream = func(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", address)
}

// forwarder is one proxy: a held listener whose connections it forwards to
// the upstream, spliced socket to socket while a direction has no data
// toxic, through toxiproxy's links while it has (see pump). Its fields are guarded by the
// Server's mutex, except what the capture path and the connections read.
type forwarder struct {
	s                      *Server
	name, listen, upstream string
	enabled                bool
	// tp is toxiproxy's view of this proxy, never started: its
	// ToxicCollection holds the toxics and runs every connection's links.
	tp  *toxiproxy.Proxy
	log *slog.Logger

	plan    atomic.Pointer[plan] // the handshake toxics, for the capture path
	holding atomic.Bool          // the gate holds SYNs
	held    heldLog              // clients whose SYN was held, for the log
	run     *run                 // while enabled
	seq     atomic.Uint64        // names links
	toxic   atomic.Uint32        // toxicUp, toxicDown, toxicResetPeer: what the chain has
}

// run is one enabled spell of a forwarder: its gate and its connections.
type run struct {
	gate     gate
	upstream string
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the accept loop and connections being set up

	mu     sync.Mutex
	closed bool
	pairs  map[*pair]struct{}
}

func (s *Server) newForwarder(name, listen, upstream string) *forwarder {
	f := &forwarder{
		s:        s,
		name:     name,
		listen:   listen,
		upstream: upstream,
		tp:       toxiproxy.NewProxy(s.tp, name, listen, upstream),
		log:      s.log.With("proxy", name),
	}
	f.plan.Store(new(plan))
	return f
}

// view is the proxy as the API shows it.
func (f *forwarder) view() proxyView {
	return proxyView{
		Name:     f.name,
		Listen:   f.listen,
		Upstream: f.upstream,
		Enabled:  f.enabled,
		Toxics:   f.tp.Toxics.GetToxicArray(),
	}
}

// start opens the listener and starts forwarding.
func (f *forwarder) start() error {
	if f.enabled {
		return toxiproxy.ErrProxyAlreadyStarted
	}
	la, err := resolveListen(f.listen)
	if err != nil {
		f.log.Warn("proxy not started", "listen", f.listen, "err", err)
		return err
	}
	network, address := listenAddress(f.listen)
	cfg := gateConfig{strategy: f.s.support.strategy, onEvent: f.onEvent}
	if f.s.support.perConn == nil {
		cfg.decide = f.decide
	}
	g, err := openGate(network, address, cfg)
	if err != nil {
		err = listenError(la, err)
		f.log.Warn("proxy not started", "listen", f.listen, "err", err)
		return err
	}
	f.listen = g.Addr().String()
	// The labels of toxiproxy's byte counters, which its links read as they
	// start (none is running: the accept loop starts below).
	f.tp.Listen, f.tp.Upstream = f.listen, f.upstream
	f.holding.Store(true) // a gate holds from the start
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{gate: g, upstream: f.upstream, ctx: ctx, cancel: cancel, pairs: make(map[*pair]struct{})}
	f.run, f.enabled = r, true
	f.apply(nil, f.plan.Load()) // releases or keeps holding: cannot fail
	r.wg.Add(1)
	go f.accept(r)
	f.log.Info("proxy started", "listen", f.listen, "upstream", f.upstream, "strategy", g.Strategy())
	return nil
}

// stop closes the listener and every connection.
func (f *forwarder) stop() {
	if !f.enabled {
		return
	}
	r := f.run
	f.run, f.enabled = nil, false
	r.cancel()
	err := r.gate.Close()
	r.mu.Lock()
	r.closed = true
	n := len(r.pairs)
	for p := range r.pairs {
		p.abort()
	}
	r.mu.Unlock()
	r.wg.Wait()
	f.holding.Store(false)
	if err != nil {
		f.log.Warn("proxy stopped", "connections_closed", n, "err", err)
		return
	}
	f.log.Info("proxy stopped", "connections_closed", n)
}

// update applies a PATCH (or POST) /proxies/{proxy}, as toxiproxy's
// Proxy.Update does: a listen address that resolves to the one the proxy
// listens on, and the same upstream, leave it running.
func (f *forwarder) update(in proxyInput) error {
	differs, err := f.differs(in.Listen, in.Upstream)
	if err != nil {
		return err
	}
	if differs {
		f.stop()
		f.listen, f.upstream = in.Listen, in.Upstream
	}
	if in.Enabled != f.enabled {
		if in.Enabled {
			return f.start()
		}
		f.stop()
	}
	return nil
}

// listenAddress is the network and address a proxy's listen field names.
// An empty host listens on every address of both families, as
// net.Listen("tcp", ":port") does.
func listenAddress(listen string) (network, address string) {
	host, port, err := net.SplitHostPort(listen)
	if err == nil && host == "" {
		return "tcp", net.JoinHostPort("::", port)
	}
	if listen == "" {
		return "tcp", "[::]:0"
	}
	return "tcp", listen
}

// accept forwards every connection the gate accepts until it is closed.
func (f *forwarder) accept(r *run) {
	defer r.wg.Done()
	var pause time.Duration
	for {
		c, err := r.gate.Accept()
		if err != nil {
			if r.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, most likely: say so, wait, go on.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			f.log.Warn("accept failed", "err", err, "retry_in_ms", pause.Milliseconds())
			select {
			case <-time.After(pause):
			case <-r.ctx.Done():
				return
			}
			continue
		}
		pause = 0
		r.wg.Add(1)
		go f.connect(r, c)
	}
}

// connect dials the upstream for client and links the two.
func (f *forwarder) connect(r *run, client net.Conn) {
	defer r.wg.Done()
	from := client.RemoteAddr().String()
	up, err := dialUpstream(r.ctx, r.upstream)
	if err != nil {
		client.Close()
		if r.ctx.Err() == nil {
			f.log.Warn("upstream unreachable, client closed", "client", from, "upstream", r.upstream, "err", err)
		}
		return
	}
	p := newPair(client, up, func(p *pair) { f.closed(r, p) })
	name := from + "#" + strconv.FormatUint(f.seq.Add(1), 10)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		client.Close()
		up.Close()
		return
	}
	r.pairs[p] = struct{}{}
	// Under r.mu, as retoxic: the pumps start with the toxics as they are
	// now, and every later change reaches them.
	toxic := f.toxic.Load()
	p.up = newPump(f, name, stream.Upstream, p.client, p.upstream, toxic&toxicUp != 0)
	p.down = newPump(f, name, stream.Downstream, p.upstream, p.client, toxic&toxicDown != 0)
	r.mu.Unlock()
	if toxic&toxicResetPeer != 0 {
		if err := p.setLinger(0); err != nil {
			f.log.Warn("reset_peer: cannot set SO_LINGER 0", "client", from, "err", err)
		}
	}
	f.log.Debug("connection accepted", "client", from, "upstream", up.LocalAddr())
	go p.up.run()
	go p.down.run()
}

// Bits of forwarder.toxic: the directions that have a data toxic, and a
// reset_peer in the chain (read once per change, not per connection).
const (
	toxicUp = 1 << iota
	toxicDown
	toxicResetPeer
)

// retoxic reads the data toxics of chain, the toxics after a change, and
// switches every connection's directions that gained or lost their last
// data toxic between splicing and toxiproxy's links.
func (f *forwarder) retoxic(chain []toxics.Toxic) {
	up, down := dataToxics(chain)
	var bits uint32
	if hasResetPeer(chain) {
		bits |= toxicResetPeer
	}
	if up {
		bits |= toxicUp
	}
	if down {
		bits |= toxicDown
	}
	f.toxic.Store(bits)
	r := f.run
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.pairs {
		p.up.want(up)
		p.down.want(down)
	}
}

// closed forgets a pair both of whose ends are closed.
func (f *forwarder) closed(r *run, p *pair) {
	r.mu.Lock()
	delete(r.pairs, p)
	r.mu.Unlock()
	f.log.Debug("connection closed", "client", p.client.c.RemoteAddr(),
		"bytes_up", p.client.read.Load(), "bytes_down", p.upstream.read.Load(),
		"duration_ms", time.Since(p.started).Milliseconds())
}

// hasResetPeer reports whether a reset_peer toxic is in the chain.
func hasResetPeer(chain []toxics.Toxic) bool {
	for _, t := range chain {
		if w, ok := t.(*toxics.ToxicWrapper); ok {
			if _, ok := w.Toxic.(*resetPeer); ok {
				return true
			}
		}
	}
	return false
}
