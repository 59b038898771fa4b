package listener

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"
)

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
	h.startedAt = time.Now()
	h.settle(f, want)
	h.startedAt = time.Time{}
}

// lead is how long before its instant the listener's release starts; h.mu
// is held.
func (h *Held) lead() time.Duration {
	if h.sys.eng == nil {
		return 0
	}
	a := h.local.Addr()
	v4 := a.Is4() || h.dual
	return h.sys.eng.leadFor(v4, !a.Is4())
}

// preparer is the prepare of the listener's release: prepareRelease with
// WarmRelease, else none (the clock then wakes Spin before the release, not
// PrepareAhead earlier still).
func (h *Held) preparer() func() {
	if h.sys.eng == nil || !h.tune.WarmRelease {
		return nil
	}
	return h.prepareRelease
}

// prepareRelease runs when the clock wakes for the listener's release,
// shortly before it, and again Rewarm (100 µs) before it: it touches what
// the release will touch (the held SYNs) and warms the kernel's path of the
// replay. Measured as used (the server binary, pairs 100-300 ms apart, the
// clock's own trace): a warm-up takes 100-250 µs; the kernel's path from
// the replayed SYN to the SYN-ACK took 45-175 µs unwarmed, 22-32 µs right
// after a warm-up, and 35-130 µs again ~600 µs after one; with a second
// warm-up 100 µs before the start, 28-55 µs.
func (h *Held) prepareRelease() {
	h.mu.Lock()
	var v4, v6 bool
	for _, f := range h.flows {
		if !f.released {
			touch(f.ip)
			v4, v6 = v4 || f.dst.Is4(), v6 || !f.dst.Is4()
		}
	}
	h.mu.Unlock()
	if !v4 && !v6 { // nothing held yet: warm the listener's families
		a := h.local.Addr()
		v4, v6 = a.Is4() || h.dual, !a.Is4()
	}
	h.sys.eng.warm(v4, v6)
}

// prepareFlow is prepareRelease for one flow's own instant.
func (h *Held) prepareFlow(k flowKey) {
	h.mu.Lock()
	f := h.flows[k]
	var dst netip.Addr
	if f != nil {
		touch(f.ip)
		dst = f.dst
	}
	h.mu.Unlock()
	if f == nil {
		return
	}
	h.sys.eng.warm(dst.Is4(), !dst.Is4())
}

// touchSink keeps touch's reads from being optimised away.
var touchSink atomic.Uint32

// touch reads b, so that the release finds it in the cache.
func touch(b []byte) {
	var x byte
	for _, c := range b {
		x ^= c
	}
	touchSink.Add(uint32(x))
}
