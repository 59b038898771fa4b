package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/tune"
	"github.com/synhold/synhold/listener/capture"
)

// engine is the capture-and-send of strategy Replay for one network
// namespace: the one type that owns the packet sockets (capture, for every
// held listener in it) and the raw sockets (replayed SYNs, refusals,
// warm-ups). It hands what it captures to each listener's flow table (a
// sink) and sends what the flow table and the release scheduler ask; it
// knows nothing of either. It is reference-counted and closed a little
// after its last listener (tune.Config.EngineLinger), so that nothing stays
// open. It keeps the tuning of the listener that opened it.
//
// There are two capture sockets: lo, bound to the loopback device, and cap,
// bound to every device, whose loopback packets are left to lo. A packet
// socket stamps a packet when the kernel hands the packet to it, and the
// kernel hands each received packet to the sockets bound to every device
// first, then to those bound to its device, such as "tcpdump -i lo". A
// socket bound to every device therefore stamped a SYN on loopback earlier
// than tcpdump did, by the time the sockets in between took: 10-70 µs
// measured here, 0.4-1.8 ms in earlier runs under load. Bound to lo, the
// SYN is stamped next to tcpdump's stamp (0.8-2.7 µs apart in the same
// runs).
type engine struct {
	cap, lo    *capture.Socket
	raw4, raw6 *replay.Conn
	netns      uint64
	cfg        tune.Config

	warm4, warm6 *warmer     // nil where warming is off or loopback lacks the family
	lead4, lead6 leadLearner // the early start's lead, per family
	// lastWarm4 and lastWarm6 are when the path of each family was last
	// warmed or taken by a replay (UnixNano), so that releases due
	// together share one warm-up.
	lastWarm4, lastWarm6 atomic.Int64

	readers sync.WaitGroup // the read goroutines started; done closes when they end

	mu    sync.Mutex
	ports map[uint16][]sink
	quiet map[sink]bool // sinks left out of the filter and of lookup (Config.Quiet, released)
	done  chan struct{}

	// Guarded by engineMu.
	refs   int
	idle   *time.Timer // closes the engine once it has had no listener for cfg.EngineLinger
	failed bool        // the capture failed; the next acquire opens another
}

// syncTimeout bounds how long a Close or a Handshake waits for the capture to
// hand over what it holds.
const syncTimeout = 50 * time.Millisecond

// loopbackIfindex is the index of the loopback device in every network
// namespace (LOOPBACK_IFINDEX in the kernel).
const loopbackIfindex = 1

var (
	engineMu sync.Mutex
	engines  = make(map[uint64]*engine) // by network namespace
	// openEngine is the seam through which an engine is opened; tests
	// replace it to simulate a missing privilege.
	openEngine = newEngine
	// send is the seam through which SYNs are replayed and RSTs sent.
	send = (*replay.Conn).Send
	// readPacket is the seam through which the engine reads its capture;
	// tests replace it to make the capture fail.
	readPacket = (*capture.Socket).ReadPacket
	// statNetns is the seam through which the namespace is identified;
	// tests replace it to make it fail.
	statNetns = unix.Stat
)

// acquireEngine returns the engine of the calling thread's network
// namespace, opening it with cfg if needed.
func acquireEngine(cfg tune.Config) (*engine, error) {
	runtime.LockOSThread() // the namespace is the thread's
	defer runtime.UnlockOSThread()
	ns, err := currentNetns()
	if err != nil {
		return nil, err
	}
	engineMu.Lock()
	defer engineMu.Unlock()
	e := engines[ns]
	if e == nil {
		var err error
		if e, err = openEngine(cfg); errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("listener: strategy replay needs CAP_NET_RAW (run as root, or setcap cap_net_raw+ep on the binary): %w", err)
		} else if err != nil {
			return nil, err
		}
		e.netns = ns
		engines[ns] = e
	}
	if e.idle != nil {
		e.idle.Stop()
		e.idle = nil
	}
	e.refs++
	return e, nil
}

// currentNetns identifies the calling thread's network namespace by inode.
// Without it, listeners of different namespaces could share one engine,
// which captures in one of them only: it is an error.
func currentNetns() (uint64, error) {
	var st unix.Stat_t
	if err := statNetns("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("listener: which network namespace this is: %w", os.NewSyscallError("stat /proc/thread-self/ns/net", err))
	}
	return st.Ino, nil
}

// release drops a reference. The engine outlives its last listener by
// cfg.EngineLinger, so that listeners opened one after another share one
// (opening costs a capture socket, closing one waits ~15 ms for the kernel);
// then it closes. The sockets are closed outside engineMu: closing an
// AF_PACKET socket waits for an RCU grace period (about 12-15 ms here), and a
// Listen meanwhile would wait with it (the bench measured a control reply
// p99 of 7.3 ms against 0.6 ms).
func (e *engine) release() {
	engineMu.Lock()
	e.refs--
	if e.refs > 0 {
		engineMu.Unlock()
		return
	}
	if linger := e.cfg.EngineLinger; linger > 0 && !e.failed {
		e.idle = time.AfterFunc(linger, e.closeIdle)
		engineMu.Unlock()
		return
	}
	e.forget()
	engineMu.Unlock()
	e.close()
}

// closeIdle closes the engine if no listener took it meanwhile.
func (e *engine) closeIdle() {
	engineMu.Lock()
	if e.refs > 0 || e.idle == nil {
		engineMu.Unlock()
		return
	}
	e.idle = nil
	e.forget()
	engineMu.Unlock()
	e.close()
}

// forget removes e from the engines of its namespace; engineMu is held.
func (e *engine) forget() {
	if engines[e.netns] == e {
		delete(engines, e.netns)
	}
}

// closeIdleEngines closes, now, the capture engines that no listener uses,
// which otherwise outlive their last listener by a few seconds. A test that
// counts its descriptors calls it after closing its listeners.
func closeIdleEngines() {
	closeIdle()
}

func init() { tune.RegisterCloseIdle(closeIdle) }

// closeIdle is closeIdleEngines.
func closeIdle() {
	engineMu.Lock()
	var idle []*engine
	for _, e := range engines {
		if e.refs == 0 && e.idle != nil {
			e.idle.Stop()
			e.idle = nil
			e.forget()
			idle = append(idle, e)
		}
	}
	engineMu.Unlock()
	for _, e := range idle {
		e.close()
	}
}

func newEngine(cfg tune.Config) (_ *engine, err error) {
	e := &engine{cfg: cfg, ports: make(map[uint16][]sink), quiet: make(map[sink]bool), done: make(chan struct{})}
	defer func() {
		if err != nil {
			e.close() // e, not the named result, which is nil by now
		}
	}()
	if e.raw4, err = replay.Open(unix.AF_INET); err != nil {
		return nil, err
	}
	if e.raw6, err = replay.Open(unix.AF_INET6); err != nil {
		return nil, err
	}
	if cfg.WarmRelease {
		e.warm4, e.warm6 = openWarmer(unix.AF_INET), openWarmer(unix.AF_INET6)
	}
	if e.lo, err = capture.Open(capture.Config{IgnoreMark: replay.Mark, Ifindex: loopbackIfindex}); err != nil {
		return nil, fmt.Errorf("listener: replay: %w", err)
	}
	if e.cap, err = capture.Open(capture.Config{IgnoreMark: replay.Mark, SkipIfindex: loopbackIfindex}); err != nil {
		return nil, fmt.Errorf("listener: replay: %w", err)
	}
	_ = e.setPorts() // no port yet: keep nothing, rather than every port
	e.readers.Add(2)
	go e.read(e.lo)
	go e.read(e.cap)
	go func() { e.readers.Wait(); close(e.done) }()
	return e, nil
}

// close closes the captures, waits for their readers if they were started
// (a reader may be replaying), then closes the raw sockets they replay
// through.
func (e *engine) close() {
	// Each close waits for an RCU grace period: close both at once.
	var closing sync.WaitGroup
	for _, c := range []*capture.Socket{e.lo, e.cap} {
		if c != nil {
			closing.Go(func() { c.Close() })
		}
	}
	closing.Wait()
	e.readers.Wait()
	for _, c := range []*replay.Conn{e.raw4, e.raw6} {
		if c != nil {
			c.Close()
		}
	}
	for _, w := range []*warmer{e.warm4, e.warm6} {
		if w != nil {
			w.close()
		}
	}
}

// sink is what the engine hands a listener's captured packets to: its
// flow table. The engine knows listeners only as sinks, so that packets
// flow one way, from the capture to the flows.
type sink interface {
	// port is the listener's port; owns says whether a packet to a is its.
	port() uint16
	owns(a netip.Addr) bool
	onSYN(p capture.Packet)
	onSYNACK(p capture.Packet)
	// onFault is told that the capture failed.
	onFault(err error)
}

// register hands h the captured packets of its port, and narrows the
// captures' filters to the ports held. A filter that cannot be narrowed is
// widened to every port instead (more wake-ups, nothing missed); one that
// can be neither would drop h's SYNs, and register fails.
func (e *engine) register(h sink) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := h.port()
	e.ports[p] = append(e.ports[p], h)
	if err := e.setPorts(); err != nil {
		e.remove(h)
		return err
	}
	return nil
}

func (e *engine) unregister(h sink) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remove(h)
	// A filter left wider than the ports held only costs wake-ups.
	_ = e.setPorts()
}

// setQuiet leaves h out of the captures' filters (on) or puts it back. It
// returns once the kernel has the new filters: from then on, a packet of
// h's port is kept (or, for a quiet h, dropped unless another listener
// holds the port). Putting h back fails if neither capture can be made to
// keep its port.
func (e *engine) setQuiet(h sink, on bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if on {
		e.quiet[h] = true
	} else {
		delete(e.quiet, h)
	}
	return e.setPorts()
}

// remove forgets h; e.mu is held.
func (e *engine) remove(h sink) {
	delete(e.quiet, h)
	p := h.port()
	hs := e.ports[p]
	for i, x := range hs {
		if x == h {
			hs = append(hs[:i], hs[i+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(e.ports, p)
	} else {
		e.ports[p] = hs
	}
}

// setPorts narrows both captures to the ports held by a listener that is
// not quiet, so that the capture wakes for no other loopback traffic (the
// control connections of a server, other programs' connections); e.mu is
// held. With no such port the captures keep nothing, rather than every
// port. Where a capture's filter cannot be narrowed it is widened to every
// port.
func (e *engine) setPorts() error {
	ports := make([]uint16, 0, len(e.ports))
	for p, hs := range e.ports {
		if slices.ContainsFunc(hs, func(h sink) bool { return !e.quiet[h] }) {
			ports = append(ports, p)
		}
	}
	for _, c := range []*capture.Socket{e.lo, e.cap} {
		if c == nil {
			continue
		}
		if len(ports) == 0 {
			_ = c.KeepNone() // a filter left wider only costs wake-ups
			continue
		}
		if err := c.SetPorts(ports); err != nil {
			if err2 := c.SetPorts(nil); err2 != nil {
				return fmt.Errorf("listener: capture filter: %w (and widening it: %w)", err, err2)
			}
		}
	}
	return nil
}

// lookup finds the listener that owns local address a.
func (e *engine) lookup(a netip.AddrPort) sink {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.ports[a.Port()] {
		if h.owns(a.Addr()) && !e.quiet[h] {
			return h
		}
	}
	return nil
}

// read hands every SYN and SYN-ACK captured by c to the listener it belongs
// to. (e.cap's filter leaves the loopback device's packets to e.lo: the
// kernel drops them before they wake the reader.)
// A failure it cannot retry (the capture retries the transient ones) goes
// to every listener of the engine as a Fault, and the next listener opened
// gets an engine of its own.
func (e *engine) read(c *capture.Socket) {
	defer e.readers.Done()
	for {
		p, err := readPacket(c)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			e.fail(err)
			return
		}
		switch {
		case p.IsSYN() && !p.Outgoing:
			if h := e.lookup(p.Dst); h != nil {
				h.onSYN(p)
			}
		case p.IsSYNACK() && (p.Outgoing || p.Loopback):
			if h := e.lookup(p.Src); h != nil {
				h.onSYNACK(p)
			}
		}
	}
}

// fail tells every listener of e that its capture failed, once, whichever
// of its two captures failed first.
func (e *engine) fail(err error) {
	engineMu.Lock()
	if e.failed {
		engineMu.Unlock()
		return
	}
	e.failed = true
	e.forget()
	engineMu.Unlock()
	slog.Error("listener: capture failed; SYNs from now on complete at their client's retransmission after the release", "err", err)
	e.mu.Lock()
	var hs []sink
	for _, l := range e.ports {
		hs = append(hs, l...)
	}
	e.mu.Unlock()
	for _, h := range hs {
		h.onFault(err)
	}
}

// sync waits, at most syncTimeout, until the capture has handed over every
// packet it held when sync was called.
func (e *engine) sync() {
	select {
	case <-e.done:
		return // no reader: nothing will come
	default:
	}
	deadline := time.Now().Add(syncTimeout)
	_ = e.lo.Sync(deadline)
	_ = e.cap.Sync(deadline)
}

// refuse sends the RST|ACK that refuses client's SYN (initial sequence
// number isn) to local, seen on interface ifindex.
func (e *engine) refuse(local, client netip.AddrPort, isn uint32, ifindex int) error {
	c := e.raw6
	if local.Addr().Is4() {
		c = e.raw4
	}
	if err := send(c, replay.RST(local, client, isn), replay.To(client.Addr(), ifindex)); err != nil {
		return fmt.Errorf("listener: refuse %v: %w", client, err)
	}
	return nil
}

// replay sends the captured SYN ip (checksum already fixed) back into the
// stack, addressed to dst, the listener's local address, whose socket
// address (replay.To, with the interface) is to.
func (e *engine) replay(ip []byte, dst netip.Addr, to unix.Sockaddr) error {
	c, last := e.raw6, &e.lastWarm6
	if dst.Is4() {
		c, last = e.raw4, &e.lastWarm4
	}
	last.Store(time.Now().UnixNano())
	if err := send(c, ip, to); err != nil {
		return fmt.Errorf("listener: replay SYN to %v: %w", dst, err)
	}
	return nil
}
