package listener

import (
	"errors"
	"net/netip"
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
