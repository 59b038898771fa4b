package listener

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/tune"
)

// Held is a TCP listener whose handshakes complete at chosen instants. It is
// a net.Listener; Accept returns connections once their handshake is done.
type Held struct {
	cfg      Config
	tune     tune.Config // the machinery's tuning when it opened
	strategy Strategy
	local    netip.AddrPort
	dual     bool // IPv6 wildcard that also takes IPv4

	ln      net.Listener
	rc      syscall.RawConn // the listening socket, for its filter
	sys     sysState        // per-OS state
	clk     releaseclock.Clock
	waiting atomic.Int32 // Accepts waiting at the gate, for tests
	// accepting counts Accepts past the gate, in accept(2): Hold waits for
	// them to leave before it plugs the queue again.
	accepting atomic.Int32

	// The gate Accept waits at: listening is closed while Accept may take
	// connections from ln (not while a full accept queue holds SYNs: it
	// would take the plug). plugs are the addresses of the plugs that may
	// still sit in the accept queue: the current one, and those a Hold
	// replaced before any Accept took them.
	gateMu    sync.Mutex
	listening chan struct{}
	plugs     map[netip.AddrPort]bool
	plugNow   netip.AddrPort // the plug filling the queue now
	closed    chan struct{}
	ev        *eventQueue // nil without OnEvent

	closeMu      sync.Mutex
	closeStarted bool
	closeDone    chan struct{} // closed when Close has finished
	closeErr     error

	mu         sync.Mutex
	want       time.Time // the instant held handshakes complete
	job        *releaseclock.Job
	released   bool
	releasedAt time.Time
	holdSince  time.Time // the start of the latest Hold that re-armed the listener
	startedAt  time.Time // the start of the release under way, for its latency; zero between releases
	degraded   bool      // the capture failed: SYNs go unseen (Linux)
	flows      map[flowKey]*flow
	order      []flowKey
	byClient   map[netip.AddrPort]*flow
	// Config.Quiet's state: muted is true while the port is left out of
	// the capture; awaiting are the released flows whose SYN-ACKs the
	// capture must see first, unless quietBy passes.
	muted    bool
	awaiting map[*flow]struct{}
	quietBy  time.Time
}

// Listen announces on a local TCP address, with handshakes held as cfg says.
// network is "tcp4", "tcp6" or "tcp"; an IPv6 listener is IPv6-only unless
// it is "tcp" on the wildcard address. With Strategy Auto, Listen picks
// Replay where it can, and says which it picked in Strategy.
func Listen(network, address string, cfg Config) (*Held, error) {
	local, err := splitNetwork(network, address)
	if err != nil {
		return nil, err
	}
	if cfg.After > 0 && cfg.Decide != nil {
		return nil, errors.New("listener: set After or Decide, not both")
	}
	if cfg.After > 0 {
		after := cfg.After
		cfg.Decide = func(s SYN) Verdict { return Verdict{At: s.Time.Add(after)} }
	}
	h := &Held{
		cfg:       cfg,
		tune:      tune.Get(),
		local:     local,
		dual:      network == "tcp" && local.Addr().IsUnspecified() && local.Addr().Is6(),
		want:      cfg.At,
		listening: make(chan struct{}),
		closed:    make(chan struct{}),
		closeDone: make(chan struct{}),
		flows:     make(map[flowKey]*flow),
		byClient:  make(map[netip.AddrPort]*flow),
	}
	if cfg.OnEvent != nil {
		h.ev = newEventQueue(cfg.OnEvent)
	}
	if err := h.start(); err != nil {
		if h.ev != nil {
			h.ev.close()
		}
		return nil, err
	}
	track(h)
	if !cfg.At.IsZero() {
		h.ReleaseAt(cfg.At)
	}
	return h, nil
}

// Strategy returns the strategy the listener uses: Retransmit once a fault
// of the capture left a Replay listener to hold that way.
func (h *Held) Strategy() Strategy {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.degraded {
		return Retransmit
	}
	return h.strategy
}

// Addr returns the listener's address.
func (h *Held) Addr() net.Addr { return net.TCPAddrFromAddrPort(h.local) }

// AddrPort returns the listener's address.
func (h *Held) AddrPort() netip.AddrPort { return h.local }

// Accept waits for the next connection whose handshake has completed.
func (h *Held) Accept() (net.Conn, error) {
	for {
		h.waiting.Add(1)
		select {
		case <-h.gate():
		case <-h.closed:
			h.waiting.Add(-1)
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: h.Addr(), Err: net.ErrClosed}
		}
		h.waiting.Add(-1)
		h.accepting.Add(1)
		c, err := h.ln.Accept()
		h.accepting.Add(-1)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !h.isClosed() {
			continue // Hold woke it: wait at the gate
		}
		if err != nil {
			return nil, err
		}
		if h.takePlug(clientKey(c.RemoteAddr().(*net.TCPAddr).AddrPort())) {
			c.Close() // a connection that held the queue full
			continue
		}
		detachChild(c)
		return c, nil
	}
}

// gate returns the channel Accept waits on.
func (h *Held) gate() chan struct{} {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	return h.listening
}

// openGate lets Accept take connections.
func (h *Held) openGate() {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	select {
	case <-h.listening:
	default:
		close(h.listening)
	}
}

// shutGate makes Accept wait again.
func (h *Held) shutGate() {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	select {
	case <-h.listening:
		h.listening = make(chan struct{})
	default:
	}
}

// isPlug reports whether a is the address of one of the listener's plugs.
func (h *Held) isPlug(a netip.AddrPort) bool {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	return h.plugs[a]
}

// takePlug reports whether a is the address of one of the listener's plugs
// that Accept just took from the queue, and forgets it if so (unless it is
// the current plug, whose SYNs onSYN must still ignore).
func (h *Held) takePlug(a netip.AddrPort) bool {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	if !h.plugs[a] {
		return false
	}
	if a != h.plugNow {
		delete(h.plugs, a)
	}
	return true
}

// addPlug records the address of a new plug, before its SYN, so that
// onSYN ignores it and Accept skips it, and makes it the current one.
func (h *Held) addPlug(a netip.AddrPort) {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	if h.plugs == nil {
		h.plugs = make(map[netip.AddrPort]bool)
	}
	h.plugs[a], h.plugNow = true, a
}

// dropPlug forgets a plug that never connected, making old current again.
func (h *Held) dropPlug(a, old netip.AddrPort) {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	delete(h.plugs, a)
	h.plugNow = old
}

// Close stops the listener. Handshakes still held are abandoned: their
// clients see no answer, as if the host had gone. Before it stops, Close
// lets the capture hand over what it already holds for the listener (the
// SYN-ACK of a connection just accepted, say), and it returns once OnEvent
// has been called for every event and will not be called again. OnEvent may
// call Close.
func (h *Held) Close() error {
	h.closeMu.Lock()
	if h.closeStarted {
		h.closeMu.Unlock()
		if h.ev != nil && h.ev.delivering() {
			h.ev.close() // the first Close waits for this OnEvent to return
			return nil
		}
		<-h.closeDone
		return h.closeErr
	}
	h.closeStarted = true
	h.closeMu.Unlock()

	h.syncCapture()
	h.mu.Lock()
	close(h.closed)
	if h.job != nil {
		h.clk.Cancel(h.job)
	}
	for _, f := range h.flows {
		if f.job != nil {
			h.clk.Cancel(f.job)
		}
	}
	h.mu.Unlock()
	untrack(h)
	h.closeErr = h.stop()
	if h.ev != nil {
		h.ev.close()
	}
	close(h.closeDone)
	return h.closeErr
}

// Hold makes a released listener hold again: SYNs that arrive from now on
// are held (and, with Decide, decided) until the next Release, ReleaseAt or
// ReleaseHeld. Handshakes already let through stay so. It does nothing on a
// listener that holds; it returns an error, and changes nothing, if the
// hold cannot be put back (strategy DelayedListen, a closed listener).
// On a quiet listener (Config.Quiet) it first puts the port back in the
// capture, and attaches the hold only once the kernel has the capture's new
// filter, so that every SYN the hold drops has been captured.
func (h *Held) Hold() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed() {
		return &net.OpError{Op: "hold", Net: "tcp", Addr: h.Addr(), Err: net.ErrClosed}
	}
	if !h.released {
		return nil
	}
	wasMuted := h.muted
	if err := h.unmute(); err != nil {
		return err
	}
	// A SYN the capture stamps from here on may meet the hold: it is held
	// (one the kernel answered before the hold was in place gets a
	// duplicate replay, which it ignores), rather than lost until its
	// client retransmits.
	since := time.Now()
	if err := h.rehold(); err != nil {
		if wasMuted {
			h.mute() // as it was
		}
		return err
	}
	h.released, h.want, h.holdSince, h.awaiting = false, time.Time{}, since, nil
	return nil
}

// stop closes the listener and lets go of the engine and the clock.
func (h *Held) stop() error {
	h.sys.unregister(h)
	var err error
	if h.ln != nil {
		err = h.ln.Close()
	} else {
		err = h.sys.bound.close()
	}
	h.sys.close()
	if h.clk != nil {
		releaseclock.Release()
	}
	return err
}

func (h *Held) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// emit queues e for OnEvent, without blocking, so that a slow callback never
// holds up the capture or a release. It is called with h.mu held, so that
// events are queued in the order they happened, and none after Close.
func (h *Held) emit(e Event) {
	if h.ev == nil {
		return
	}
	if !e.Local.IsValid() {
		e.Local = h.local
	}
	h.ev.push(e)
}

var (
	openMu    sync.Mutex
	openHelds = make(map[*Held]struct{}) // every open listener, for faults of the process's clock
)

func track(h *Held)   { openMu.Lock(); openHelds[h] = struct{}{}; openMu.Unlock() }
func untrack(h *Held) { openMu.Lock(); delete(openHelds, h); openMu.Unlock() }

// port is the listener's port, as the engine files it.
func (h *Held) port() uint16 { return h.local.Port() }

// owns reports whether a captured packet to address a is for this listener.
func (h *Held) owns(a netip.Addr) bool {
	l := h.local.Addr()
	switch {
	case l == a:
		return true
	case !l.IsUnspecified():
		return false
	case h.dual:
		return true
	default:
		return l.Is4() == a.Is4()
	}
}
