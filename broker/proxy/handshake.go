package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/synhold/synhold/internal/eventlog"
	"github.com/synhold/synhold/listener"
)

// decide is the gate's Decide: what becomes of a connection whose first SYN
// arrived at syn. It runs on the capture path: one atomic load, no lock but
// the random source's.
func (f *forwarder) decide(syn time.Time) verdict {
	return f.plan.Load().decide(syn, f.s.rng)
}

// replan reads the toxics again after a change to the chain: it switches
// connections between splicing and toxiproxy's links (retoxic), and makes
// the gate hold, release or keep holding as the handshake toxics ask. If the gate
// cannot hold, the plan stays as it was and the error says why.
func (f *forwarder) replan() error {
	chain := f.tp.Toxics.GetToxicArray()
	f.retoxic(chain)
	next := newPlan(chain)
	prev := f.plan.Swap(next)
	if f.run == nil {
		return nil
	}
	if err := f.apply(prev, next); err != nil {
		f.plan.Store(prev)
		return err
	}
	return nil
}

// apply moves the gate from what prev asked for to what next asks for. prev
// nil: the gate was just opened, and holds.
func (f *forwarder) apply(prev, next *plan) error {
	g := f.run.gate
	switch {
	case next.empty():
		if prev == nil || !prev.empty() {
			g.Release()
			f.holding.Store(false)
			if prev != nil {
				f.log.Info("handshakes released", "why", "no handshake toxic left", "strategy", g.Strategy(),
					"completes", completes(g.Strategy()))
			}
		}
	case prev != nil && prev.empty():
		if err := g.Hold(); err != nil {
			f.log.Error("cannot hold handshakes", "err", err)
			return fmt.Errorf("cannot hold handshakes: %w", err)
		}
		f.holding.Store(true)
		f.log.Info("holding handshakes", "strategy", g.Strategy())
	case prev != nil && prev.hold && !next.hold:
		g.ReleaseHeld()
		f.log.Info("held handshakes released", "why", "handshake_hold removed", "strategy", g.Strategy(),
			"completes", completes(g.Strategy()))
	}
	return nil
}

// completes says when a released handshake completes with strategy s.
func completes(s listener.Strategy) string {
	if s == listener.Replay {
		return "now"
	}
	return "at each client's next SYN retransmission"
}

// maxHeldLog bounds the clients a forwarder remembers as held, for the
// level of their later lines; the oldest are forgotten first.
const maxHeldLog = 4096

// heldLog remembers which clients' SYNs were held, so that the lines of
// their release, SYN-ACK or RST are info lines and the others debug lines.
type heldLog struct {
	mu    sync.Mutex
	set   map[netip.AddrPort]struct{}
	order []netip.AddrPort
}

func (h *heldLog) add(c netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == nil {
		h.set = make(map[netip.AddrPort]struct{})
	}
	if _, ok := h.set[c]; ok {
		return
	}
	if len(h.order) >= maxHeldLog {
		delete(h.set, h.order[0])
		h.order = h.order[1:]
	}
	h.set[c] = struct{}{}
	h.order = append(h.order, c)
}

// has reports whether c was held; done also forgets it.
func (h *heldLog) has(c netip.AddrPort, done bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.set[c]
	if ok && done {
		delete(h.set, c)
		if i := slices.Index(h.order, c); i >= 0 {
			h.order = slices.Delete(h.order, i, i+1)
		}
	}
	return ok
}

// onEvent logs what the listener reports: one line per event, with the
// figures that matter. A handshake a toxic held gets info lines from its SYN
// to its SYN-ACK or RST; one no toxic touched, debug lines. Each line's time
// is the event's (a SYN's or SYN-ACK's kernel time), not when it was
// written, so that it lines up with the reader's own capture.
func (f *forwarder) onEvent(e listener.Event) {
	var attrs []any
	if e.Client.IsValid() {
		attrs = append(attrs, "client", e.Client.String())
	}
	if e.Kind == listener.SYNSeen {
		attrs = append(attrs, "retransmit", e.Retransmit)
		switch {
		case !f.holding.Load():
			eventlog.At(f.log, slog.LevelDebug, e.Time, "syn", attrs...)
			return
		case e.Want.IsZero():
			attrs = append(attrs, "until", "the hold is removed")
		default:
			attrs = append(attrs, "want", e.Want, "hold_us", e.Want.Sub(e.Time).Microseconds())
		}
		f.held.add(e.Client)
		if !e.Retransmit {
			f.s.metrics.handshake().onHeld(f.name)
		}
		eventlog.At(f.log, slog.LevelInfo, e.Time, "syn held", attrs...)
		return
	}
	if !e.Want.IsZero() {
		attrs = append(attrs, "want", e.Want, "late_us", e.Late().Microseconds())
	}
	level := slog.LevelDebug
	switch e.Kind {
	case listener.SYNACKSent, listener.Refused:
		if f.held.has(e.Client, true) {
			level = slog.LevelInfo
			f.s.metrics.handshake().onAnswered(f.name, e.Kind == listener.Refused, e.Want, e.Late())
		}
	case listener.Released:
		attrs = append(attrs, "replayed", e.Replayed)
		if e.Client.IsValid() && f.held.has(e.Client, false) || !e.Client.IsValid() && e.Replayed > 0 {
			level = slog.LevelInfo
		}
	default:
		level = slog.LevelInfo
	}
	switch {
	case e.Kind == listener.Fault:
		// The capture failed: what the proxy's handshake toxics promise no
		// longer holds (the error says what happens instead).
		level = slog.LevelError
		attrs = append(attrs, "err", e.Err)
	case e.Err != nil:
		level = slog.LevelWarn
		attrs = append(attrs, "err", e.Err)
	}
	eventlog.At(f.log, level, e.Time, eventMessage(e.Kind), attrs...)
}

// eventMessage is the message of an event's line (a SYN's are onEvent's).
func eventMessage(k listener.EventKind) string {
	switch k {
	case listener.SYNACKSent:
		return "syn-ack sent"
	case listener.Refused:
		return "refused"
	case listener.Released:
		return "released"
	case listener.Fault:
		return "listener fault"
	}
	return k.String()
}
