package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/listener/capture"
)

// engine is the machinery of strategy Replay for one network namespace:
// capture sockets for every held listener in it, and raw sockets to replay
// SYNs. It is reference-counted and closed with its last listener, so that
// nothing stays open.
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
	raw4, raw6 int
	netns      uint64

	readers sync.WaitGroup // the read goroutines started

	mu    sync.Mutex
	ports map[uint16][]*Held
	refs  int
}

// loopbackIfindex is the index of the loopback device in every network
// namespace (LOOPBACK_IFINDEX in the kernel).
const loopbackIfindex = 1

var (
	engineMu sync.Mutex
	engines  = make(map[uint64]*engine) // by network namespace
	// openEngine is the seam through which an engine is opened; tests
	// replace it to simulate a missing privilege.
	openEngine = newEngine
	// sendto is the seam through which SYNs are replayed.
	sendto = unix.Sendto
)

// acquireEngine returns the engine of the calling thread's network
// namespace, opening it if needed.
func acquireEngine() (*engine, error) {
	runtime.LockOSThread() // the namespace is the thread's
	defer runtime.UnlockOSThread()
	ns := currentNetns()
	engineMu.Lock()
	defer engineMu.Unlock()
	e := engines[ns]
	if e == nil {
		var err error
		if e, err = openEngine(); err != nil {
			return nil, err
		}
		e.netns = ns
		engines[ns] = e
	}
	e.refs++
	return e, nil
}

// currentNetns identifies the calling thread's network namespace by inode.
func currentNetns() uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &st) != nil {
		return 0
	}
	return st.Ino
}

// release drops a reference and closes the engine with the last one.
// The sockets are closed outside engineMu: closing an AF_PACKET socket waits
// for an RCU grace period (about 12-15 ms here), and a Listen meanwhile would
// wait with it (the bench measured a control reply p99 of 7.3 ms against
// 0.6 ms).
func (e *engine) release() {
	engineMu.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(engines, e.netns)
	}
	engineMu.Unlock()
	if last {
		e.close()
	}
}

func newEngine() (_ *engine, err error) {
	e := &engine{raw4: -1, raw6: -1, ports: make(map[uint16][]*Held)}
	defer func() {
		if err != nil {
			e.close() // e, not the named result, which is nil by now
		}
	}()
	if e.raw4, err = replay.Socket(unix.AF_INET); err != nil {
		return nil, err
	}
	if e.raw6, err = replay.Socket(unix.AF_INET6); err != nil {
		return nil, err
	}
	if e.lo, err = capture.Open(capture.Config{IgnoreMark: replay.Mark, Ifindex: loopbackIfindex}); err != nil {
		return nil, fmt.Errorf("listener: replay: %w", err)
	}
	if e.cap, err = capture.Open(capture.Config{IgnoreMark: replay.Mark}); err != nil {
		return nil, fmt.Errorf("listener: replay: %w", err)
	}
	e.readers.Add(2)
	go e.read(e.lo, false)
	go e.read(e.cap, true)
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
	for _, fd := range []int{e.raw4, e.raw6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (e *engine) register(h *Held) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := h.local.Port()
	e.ports[p] = append(e.ports[p], h)
}

func (e *engine) unregister(h *Held) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := h.local.Port()
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

// lookup finds the listener that owns local address a.
func (e *engine) lookup(a netip.AddrPort) *Held {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.ports[a.Port()] {
		if h.owns(a.Addr()) {
			return h
		}
	}
	return nil
}

// read hands every SYN and SYN-ACK captured by c to the listener it belongs
// to; with skipLoopback, those of the loopback device are left to e.lo.
func (e *engine) read(c *capture.Socket, skipLoopback bool) {
	defer e.readers.Done()
	for {
		p, err := c.ReadPacket()
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			slog.Error("listener: capture failed; held SYNs will complete at their retransmission", "err", err)
			return
		}
		if skipLoopback && p.Ifindex == loopbackIfindex {
			continue
		}
		switch {
		case p.IsSYN() && !p.Outgoing:
			if h := e.lookup(p.Dst); h != nil {
				h.onSYN(p)
			}
		case p.IsSYNACK() && p.Outgoing:
			if h := e.lookup(p.Src); h != nil {
				h.onSYNACK(p)
			}
		}
	}
}

// replay sends the captured SYN ip (checksum already fixed) back into the
// stack, addressed to dst, the listener's local address.
func (e *engine) replay(ip []byte, dst netip.Addr, ifindex int) error {
	fd := e.raw6
	if dst.Is4() {
		fd = e.raw4
	}
	if err := sendto(fd, ip, 0, replay.To(dst, ifindex)); err != nil {
		return fmt.Errorf("listener: replay SYN to %v: %w", dst, os.NewSyscallError("sendto", err))
	}
	return nil
}
