package listener

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
	if err := h.acquireClock(); err != nil {
		b.close()
		return err
	}
	h.sys.bound, h.local = b, local
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
