package listener

import "github.com/synhold/synhold/internal/releaseclock"

// startDelayed binds the listener now; it listens when released.
func (h *Held) startDelayed() error {
	if h.cfg.Decide != nil {
		return ErrNeedsReplay
	}
	h.strategy = DelayedListen
	b, local, err := bindOnly(h.local, h.dual)
	if err != nil {
		return err
	}
	clk, err := releaseclock.Acquire()
	if err != nil {
		b.close()
		return err
	}
	h.sys.bound, h.local, h.clk = b, local, clk
	return nil
}

// listenNow calls listen(2) on the bound socket; h.mu is held.
func (h *Held) listenNow() error {
	ln, err := h.sys.bound.listen()
	if err != nil {
		return err
	}
	h.ln = ln
	h.openGate()
	return nil
}
