package proxy

import (
	"fmt"
	"time"

	"github.com/synhold/synhold/listener"
)

// decide is the gate's Decide: what becomes of a connection whose first SYN
// arrived at syn. It runs on the capture path: one atomic load, no lock but
// the random source's.
func (f *forwarder) decide(syn time.Time) verdict {
	return f.plan.Load().decide(syn, f.s.rng)
}

// replan reads the handshake toxics again after a change to the chain, and
// makes the gate hold, release or keep holding accordingly. If the gate
// cannot hold, the plan stays as it was and the error says why.
func (f *forwarder) replan() error {
	next := newPlan(f.tp.Toxics.GetToxicArray())
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

// onEvent logs what the listener reports: one line per event, with the
// figures that matter.
func (f *forwarder) onEvent(e listener.Event) {
	attrs := []any{"client", e.Client.String(), "time", e.Time}
	if e.Kind == listener.SYNSeen {
		attrs = append(attrs, "retransmit", e.Retransmit)
		switch {
		case !f.holding.Load():
			f.log.Debug("syn", attrs...)
		case e.Want.IsZero():
			f.log.Info("syn held", append(attrs, "until", "the hold is removed")...)
		default:
			f.log.Info("syn held", append(attrs, "want", e.Want, "hold_us", e.Want.Sub(e.Time).Microseconds())...)
		}
		return
	}
	if e.Want.IsZero() && !f.holding.Load() && e.Err == nil {
		// A handshake no toxic touched.
		f.log.Debug(e.Kind.String(), attrs...)
		return
	}
	if !e.Want.IsZero() {
		attrs = append(attrs, "want", e.Want, "late_us", e.Late().Microseconds())
	}
	switch e.Kind {
	case listener.SYNACKSent:
		f.log.Info("syn-ack sent", attrs...)
	case listener.Released:
		attrs = append(attrs, "replayed", e.Replayed)
		if e.Err != nil {
			f.log.Warn("released", append(attrs, "err", e.Err)...)
			return
		}
		f.log.Info("released", attrs...)
	default:
		f.log.Info(e.Kind.String(), attrs...)
	}
}
