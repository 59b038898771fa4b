package listener

import (
	"errors"
	"fmt"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
)

// Release completes every held handshake now (or refuses it, as its Verdict
// says), and every later one at once, until Hold.
func (h *Held) Release() { h.ReleaseAt(time.Now()) }

// ReleaseHeld completes now the handshakes held without an instant (a
// Verdict with a zero At, or the listener-wide hold when no instant is set),
// refusing those whose Verdict says so, and keeps holding: later SYNs are
// still held or decided, and timed verdicts keep their instants. It needs
// strategy Replay to let single handshakes through; with Retransmit it
// does nothing.
func (h *Held) ReleaseHeld() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed() || h.released {
		return
	}
	if h.cfg.Decide == nil && !h.want.IsZero() {
		return // the listener-wide hold has an instant
	}
	for _, f := range h.flows {
		if !f.released && f.job == nil && f.hs.Want.IsZero() {
			h.settle(f, time.Now())
		}
	}
}

// ReleaseAt sets the instant at which held handshakes complete, replacing
// the one in Config.At. An instant already past releases before ReleaseAt
// returns. It does nothing once the listener has released.
func (h *Held) ReleaseAt(t time.Time) {
	h.mu.Lock()
	if h.released || h.isClosed() {
		h.mu.Unlock()
		return
	}
	if h.job != nil {
		h.clk.Cancel(h.job)
		h.job = nil
	}
	h.want = t
	if start := t.Add(-h.lead()); start.After(time.Now()) {
		h.job = h.clk.SchedulePrepared(start, h.preparer(), func(time.Time) { h.release(t) })
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.release(t)
}

// release stops holding the listener for the instant want: it opens the
// listener, then lets through every SYN held so far, and refuses those to
// refuse at want. It runs on the clock, the early start's lead before want
// (see tune.Config.EarlyStart): never so early that a SYN-ACK leaves before want
// by more than the margin, and a refusal waits for want.
func (h *Held) release(want time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released || h.isClosed() {
		return
	}
	h.released, h.job = true, nil
	h.startedAt = time.Now()
	err := h.open()
	h.releasedAt = time.Now()
	n, refuse, rerr := h.replayHeld(want)
	h.startedAt = time.Time{}
	h.quietAfterRelease()
	h.emit(Event{Kind: Released, Time: h.releasedAt, Want: want, Replayed: n, Err: errors.Join(err, rerr)})
	if len(refuse) == 0 {
		return
	}
	if want.After(time.Now()) { // started early: the refusals wait for want, on the clock
		h.job = h.clk.Schedule(want, func(time.Time) { h.refuseHeld(refuse, want) })
		return
	}
	h.refuseNow(refuse, want)
}

// refuseHeld refuses, at want, the SYNs a release left to refuse. It runs
// on the clock.
func (h *Held) refuseHeld(refuse []*flow, want time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed() {
		return
	}
	h.job = nil
	h.refuseNow(refuse, want)
}

// refuseNow refuses those of refuse not yet settled; h.mu is held.
func (h *Held) refuseNow(refuse []*flow, want time.Time) {
	for _, f := range refuse {
		if !f.released {
			h.settle(f, want)
		}
	}
}

// clockFault tells every open listener that the process's release clock
// failed (its Config.OnFault).
func clockFault(err error) {
	openMu.Lock()
	hs := make([]*Held, 0, len(openHelds))
	for h := range openHelds {
		hs = append(hs, h)
	}
	openMu.Unlock()
	for _, h := range hs {
		h.mu.Lock()
		h.emit(Event{Kind: Fault, Time: time.Now(), Err: fmt.Errorf("listener: %w", err)})
		h.mu.Unlock()
	}
}

// acquireClock acquires the process's release clock, started with the
// listener's tuning if it is the first.
func (h *Held) acquireClock() error {
	cfg := h.tune.Clock
	cfg.OnFault = clockFault
	clk, err := releaseclock.Acquire(cfg)
	if err != nil {
		return err
	}
	h.clk = clk
	return nil
}
