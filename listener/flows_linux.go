package listener

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/listener/capture"
)

// onSYN records a SYN the capture saw for this listener, and decides its
// fate: held, replayed at once, or already through.
func (h *Held) onSYN(p capture.Packet) {
	k := flowKey{clientKey(p.Src), p.Seq}
	if h.isPlug(k.client) {
		return // one of the listener's own plugs, not a client
	}
	ip := slices.Clone(p.IP)
	ferr := capture.FixChecksum(ip)
	// Decide runs without the listener's lock: it is the user's code.
	var v *Verdict
	for {
		h.mu.Lock()
		if v != nil || !h.decides(k, p.Time, ferr) {
			break
		}
		h.mu.Unlock()
		d := h.cfg.Decide(SYN{Client: k.client, Local: p.Dst, ISN: k.isn, Time: p.Time})
		v = &d
	}
	defer h.mu.Unlock()
	f, retransmit := h.flows[k]
	if !retransmit {
		f = &flow{hs: Handshake{Client: k.client, ISN: k.isn}}
		h.remember(k, f)
	}
	f.hs.SYNs = append(f.hs.SYNs, p.Time)
	if f.dst != p.Dst.Addr() || f.ifindex != p.Ifindex || f.sys.to == nil {
		f.sys.to = replay.To(p.Dst.Addr(), p.Ifindex)
	}
	// The flow keeps its own copy, in its own array where the SYN fits;
	// ip goes to the event, whose receiver may keep it and write into it.
	if len(ip) <= len(f.ipBuf) {
		f.ip = f.ipBuf[:copy(f.ipBuf[:], ip)]
	} else {
		f.ip = slices.Clone(ip)
	}
	f.dst, f.ifindex = p.Dst.Addr(), p.Ifindex
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
		if !retransmit && v != nil { // a retransmission keeps its first SYN's verdict
			f.hs.Want, f.refuse = v.At, v.Refuse
			switch {
			case v.At.IsZero(): // held until Release or ReleaseHeld
			case !v.At.After(time.Now()):
				settleNow = true
			default:
				want, start := v.At, v.At
				if !v.Refuse { // a refusal is sent at its instant
					start = want.Add(-h.flowLead(p.Dst.Addr()))
				}
				var prepare func()
				if h.tune.WarmRelease {
					prepare = func() { h.prepareFlow(k) }
				}
				f.job = h.clk.SchedulePrepared(start, prepare, func(time.Time) { h.releaseFlow(k, want) })
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

// decides reports whether onSYN will ask Decide for the verdict of a SYN
// of flow k received at t: a new connection, while the listener holds.
// h.mu is held.
func (h *Held) decides(k flowKey, t time.Time, ferr error) bool {
	if _, ok := h.flows[k]; ok || h.cfg.Decide == nil || ferr != nil || h.isClosed() {
		return false
	}
	return !h.released && !t.Before(h.holdSince)
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
	h.quietSYNACK(f)
	if !f.started.IsZero() && h.sys.eng != nil {
		h.sys.eng.learnLead(f.dst, p.Time.Sub(f.started))
	}
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

// replayHeld replays every SYN still held, but those to refuse, which it
// returns; h.mu is held.
func (h *Held) replayHeld(want time.Time) (n int, refuse []*flow, err error) {
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
	return n, refuse, err
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
	f.started = h.startedAt
	err := h.sys.eng.replay(f.ip, f.dst, f.sys.to)
	f.hs.Released = time.Now()
	return err
}
