package listener

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/listener/capture"
	"github.com/synhold/synhold/sockopt"
)

type sysState struct {
	eng       *engine
	bound     bound    // strategy DelayedListen, until it listens
	queueHold bool     // SYNs held by a full accept queue, not the filter
	plug      *os.File // the connection that fills it
}

// Probe reports the strategy Auto would pick here, and why not Replay when
// it would not.
func Probe() (Strategy, error) {
	e, err := acquireEngine()
	if err != nil {
		return Retransmit, err
	}
	e.release()
	return Replay, nil
}

func (h *Held) start() error {
	s := h.cfg.Strategy
	if s == DelayedListen {
		return h.startDelayed()
	}
	if s == Auto || s == Replay {
		eng, err := acquireEngine()
		switch {
		case err == nil:
			h.sys.eng, s = eng, Replay
		case s == Auto && errors.Is(err, os.ErrPermission):
			s = Retransmit
		default:
			return err
		}
	}
	h.strategy = s
	if err := h.startHeld(); err != nil {
		if h.sys.eng != nil {
			h.sys.eng.release()
		}
		return err
	}
	return nil
}

func (h *Held) startHeld() error {
	if h.cfg.Decide != nil && h.strategy != Replay {
		return ErrNeedsReplay
	}
	clk, err := releaseclock.Acquire()
	if err != nil {
		return err
	}
	h.clk = clk
	if err := h.listenHeld(); err != nil {
		releaseclock.Release()
		return err
	}
	return nil
}

// listenHeld opens the listening socket with the hold in place before
// listen(2), so that no SYN is ever answered early, and registers it with the
// engine before listen(2), so that none goes unseen. The hold is the BPF
// filter; where the kernel refuses it (classic socket filters need
// CAP_NET_ADMIN when kernel.unprivileged_bpf_disabled is set), it is a full
// accept queue instead.
func (h *Held) listenHeld() error {
	f, err := socketFile(h.local, h.dual)
	if err != nil {
		return err
	}
	defer f.Close() // net.FileListener keeps a duplicate
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	backlog := unix.SOMAXCONN
	switch err := sockopt.AttachFilter(rc, replay.HoldFilter()); {
	case err == nil:
	case errors.Is(err, os.ErrPermission) && h.cfg.Decide == nil:
		h.sys.queueHold, backlog = true, 0
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("listener: a per-connection delay needs the hold filter, and %w (CAP_NET_ADMIN)", err)
	default:
		return fmt.Errorf("listener: %w", err)
	}
	if h.local, err = bindRaw(rc, h.local); err != nil {
		return err
	}
	if h.sys.queueHold {
		if h.sys.plug, h.plugAddr, err = plugSocket(h.local); err != nil {
			return err
		}
	}
	if h.sys.eng != nil {
		h.sys.eng.register(h)
	}
	ln, err := listenFile(f, rc, backlog)
	if err == nil && h.sys.queueHold {
		err = plugQueue(h.sys.plug, h.local)
	}
	if err == nil {
		h.rc, err = ln.(*net.TCPListener).SyscallConn()
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		if h.sys.eng != nil {
			h.sys.eng.unregister(h)
		}
		h.closePlug()
		return err
	}
	h.ln = ln
	if !h.sys.queueHold { // else Accept waits for the release: it would take the plug
		close(h.listening)
	}
	return nil
}

// Mechanism says how the listener holds SYNs: "bpf filter", "full accept
// queue" (where the kernel refuses the filter), or "delayed listen".
func (h *Held) Mechanism() string {
	switch {
	case h.strategy == DelayedListen:
		return "delayed listen"
	case h.sys.queueHold:
		return "full accept queue"
	}
	return "bpf filter"
}

// plugSocket opens the connection that fills a backlog-0 listener's accept
// queue, bound so that its address is known before its SYN is sent.
func plugSocket(local netip.AddrPort) (*os.File, netip.AddrPort, error) {
	from := netip.AddrPortFrom(reachable(local).Addr(), 0)
	f, err := socketFile(from, false)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	rc, err := f.SyscallConn()
	var got netip.AddrPort
	if err == nil {
		got, err = bindRaw(rc, from)
	}
	if err != nil {
		f.Close()
		return nil, netip.AddrPort{}, err
	}
	return f, got, nil
}

// reachable is local, or the loopback address of its family if local is a
// wildcard: where this host can connect to the listener.
func reachable(local netip.AddrPort) netip.AddrPort {
	switch a := local.Addr(); {
	case !a.IsUnspecified():
		return local
	case a.Is4():
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), local.Port())
	default:
		return netip.AddrPortFrom(netip.IPv6Loopback(), local.Port())
	}
}

// plugQueue connects the plug to the listener. With backlog 0 the accept
// queue is then full, and Linux drops every further SYN without an answer
// (tcp_abort_on_overflow is 0 by default) until the backlog is raised.
func plugQueue(plug *os.File, local netip.AddrPort) error {
	rc, err := plug.SyscallConn()
	if err != nil {
		return err
	}
	var (
		cerr    error
		started bool
	)
	err = rc.Write(func(fd uintptr) bool {
		if !started {
			started = true
			cerr = unix.Connect(int(fd), netaddr.Sockaddr(reachable(local)))
			return cerr != unix.EINPROGRESS // else wait until writable
		}
		cerr = socketError(int(fd)) // the handshake's outcome
		return true
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("listener: fill the accept queue: %w", os.NewSyscallError("connect", err))
	}
	return nil
}

// socketError returns the pending error of a socket (SO_ERROR), nil if none.
func socketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || v == 0 {
		return err
	}
	return unix.Errno(v)
}

func (h *Held) closePlug() {
	if h.sys.plug != nil {
		h.sys.plug.Close()
		h.sys.plug = nil
	}
}

// open stops holding: the filter goes, or listen(2) is called.
func (h *Held) open() error {
	if h.strategy == DelayedListen {
		return h.listenNow()
	}
	if h.sys.queueHold {
		var lerr error
		if err := h.rc.Control(func(fd uintptr) { lerr = listenFunc(int(fd), unix.SOMAXCONN) }); err != nil {
			return err
		}
		close(h.listening)
		return os.NewSyscallError("listen", lerr)
	}
	return sockopt.DetachFilter(h.rc)
}

// detachChild removes the hold filter that an accepted connection inherited.
func detachChild(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = sockopt.DetachFilter(rc)
		}
	}
}

// release stops holding the listener at the instant want: it opens the
// listener, then replays every SYN held so far. It runs on the clock.
func (h *Held) release(want time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released || h.isClosed() {
		return
	}
	h.released, h.job = true, nil
	err := h.open()
	h.releasedAt = time.Now()
	at := h.releasedAt
	n := 0
	var refuse []*flow
	for _, f := range h.flows {
		switch {
		case f.released:
		case f.refuse:
			refuse = append(refuse, f)
		default:
			if rerr := h.replay(f, want); rerr != nil {
				err = errors.Join(err, rerr)
			}
			n++
		}
	}
	h.emit(Event{Kind: Released, Time: at, Want: want, Replayed: n, Err: err})
	for _, f := range refuse {
		h.settle(f, want)
	}
}

// settle lets one held SYN through now, or refuses it, as its verdict says,
// and reports it; h.mu is held. Without the engine (strategy Retransmit) a
// single SYN cannot be let through: it waits for the listener's release.
func (h *Held) settle(f *flow, want time.Time) {
	if h.sys.eng == nil {
		return
	}
	c := f.hs.Client
	if f.refuse {
		err := h.refuse(f, want)
		h.emit(Event{Kind: Refused, Client: c, ISN: f.hs.ISN, Time: f.hs.Refused, Want: want, Err: err})
		return
	}
	err := h.replay(f, want)
	h.emit(Event{Kind: Released, Client: c, ISN: f.hs.ISN, Time: f.hs.Released, Want: want, Replayed: 1, Err: err})
}

// refuse answers f's SYN with a RST|ACK; h.mu is held.
func (h *Held) refuse(f *flow, want time.Time) error {
	if f.job != nil {
		h.clk.Cancel(f.job)
		f.job = nil
	}
	f.released, f.hs.Want = true, want
	local := netip.AddrPortFrom(f.dst, h.local.Port())
	err := h.sys.eng.refuse(local, f.hs.Client, f.hs.ISN, f.ifindex)
	f.hs.Refused = time.Now()
	return err
}

// rehold puts the hold back on a released listener; h.mu is held.
func (h *Held) rehold() error {
	switch {
	case h.strategy == DelayedListen:
		return fmt.Errorf("listener: strategy delayed-listen cannot hold again once it listens: %w", errors.ErrUnsupported)
	case h.sys.queueHold:
		return fmt.Errorf("listener: holding again with a full accept queue (the kernel refused the hold filter): %w", errors.ErrUnsupported)
	}
	if err := sockopt.AttachFilter(h.rc, replay.HoldFilter()); err != nil {
		return fmt.Errorf("listener: hold again: %w", err)
	}
	return nil
}

// replay sends f's SYN back into the stack; h.mu is held.
func (h *Held) replay(f *flow, want time.Time) error {
	if f.job != nil {
		h.clk.Cancel(f.job)
		f.job = nil
	}
	f.released, f.hs.Want = true, want
	if h.sys.eng == nil {
		return nil
	}
	err := h.sys.eng.replay(f.ip, f.dst, f.ifindex)
	f.hs.Released = time.Now()
	return err
}

// releaseFlow settles one held SYN at its own instant. It runs on the clock.
func (h *Held) releaseFlow(k flowKey, want time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.flows[k]
	if f == nil || f.released || h.isClosed() {
		return
	}
	f.job = nil
	h.settle(f, want)
}

// onSYN records a SYN the capture saw for this listener, and decides its
// fate: held, replayed at once, or already through.
func (h *Held) onSYN(p capture.Packet) {
	k := flowKey{clientKey(p.Src), p.Seq}
	if k.client == h.plugAddr {
		return // the listener's own plug, not a client
	}
	ip := slices.Clone(p.IP)
	ferr := capture.FixChecksum(ip)
	h.mu.Lock()
	defer h.mu.Unlock()
	f, retransmit := h.flows[k]
	if !retransmit {
		f = &flow{hs: Handshake{Client: k.client, ISN: k.isn}}
		h.remember(k, f)
	}
	f.hs.SYNs = append(f.hs.SYNs, p.Time)
	f.ip, f.dst, f.ifindex = ip, p.Dst.Addr(), p.Ifindex
	var late *Event // a replay, logged after the SYN
	var settleNow bool
	switch {
	case f.released || h.isClosed() || ferr != nil:
	case h.released && p.Time.After(h.releasedAt), !h.released && p.Time.Before(h.holdSince):
		// It came while the filter was off: the kernel answers it itself.
		f.released, f.hs.Want, f.hs.Released = true, h.want, p.Time
	case h.released:
		// Dropped just before the filter went: replay it now.
		err := h.replay(f, h.want)
		late = &Event{Kind: Released, Client: k.client, ISN: k.isn, Time: f.hs.Released, Want: h.want, Replayed: 1, Err: err}
	case h.cfg.Decide != nil:
		if !retransmit { // a retransmission keeps its first SYN's verdict
			v := h.cfg.Decide(SYN{Client: k.client, Local: p.Dst, ISN: k.isn, Time: p.Time})
			f.hs.Want, f.refuse = v.At, v.Refuse
			switch {
			case v.At.IsZero(): // held until Release or ReleaseHeld
			case !v.At.After(time.Now()):
				settleNow = true
			default:
				want := v.At
				f.job = h.clk.Schedule(want, func(time.Time) { h.releaseFlow(k, want) })
			}
		}
	default:
		f.hs.Want = h.want
	}
	h.emit(Event{Kind: SYNSeen, Local: p.Dst, Client: k.client, ISN: k.isn, Time: p.Time, Want: f.hs.Want, Retransmit: retransmit, Err: ferr, IP: ip})
	if late != nil {
		h.emit(*late)
	}
	if settleNow {
		h.settle(f, f.hs.Want)
	}
}

// onSYNACK records the kernel's answer to a SYN of this listener's. On
// loopback it comes twice, sent then received: the time it reports is the
// one received, which tcpdump records and the client gets.
func (h *Held) onSYNACK(p capture.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.byClient[clientKey(p.Dst)]
	if f == nil || p.Ack != f.hs.ISN+1 || !f.hs.SYNACK.IsZero() {
		return
	}
	if p.Outgoing && f.hs.SYNACKSent.IsZero() {
		f.hs.SYNACKSent = p.Time
	}
	if p.Outgoing && p.Loopback {
		return // the received copy follows
	}
	f.hs.SYNACK = p.Time
	h.emit(Event{Kind: SYNACKSent, Local: p.Src, Client: f.hs.Client, ISN: f.hs.ISN, Time: p.Time, Want: f.hs.Want, IP: slices.Clone(p.IP)})
}

// onFault is told that the capture failed: SYNs from now on go unseen.
func (h *Held) onFault(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed() {
		return
	}
	h.degraded = true
	h.emit(Event{Kind: Fault, Time: time.Now(), Err: fmt.Errorf(
		"listener: %w; SYNs from now on complete at their client's retransmission after the release, as with strategy retransmit", err)})
}

// syncCapture waits, briefly, until the capture has handed over every
// packet it held when syncCapture was called.
func (h *Held) syncCapture() {
	if h.sys.eng != nil {
		h.sys.eng.sync()
	}
}

// stop closes the listener and lets go of the engine and the clock.
func (h *Held) stop() error {
	if h.sys.eng != nil {
		h.sys.eng.unregister(h)
	}
	var err error
	if h.ln != nil {
		err = h.ln.Close()
	} else {
		err = h.sys.bound.close()
	}
	h.closePlug()
	if h.sys.eng != nil {
		h.sys.eng.release()
	}
	if h.clk != nil {
		releaseclock.Release()
	}
	return err
}
