//go:build !linux

package listener

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
)

type sysState struct {
	bound bound
}

// Probe reports the strategy Auto picks here: DelayedListen, since holding
// SYNs is Linux's.
func Probe() (Strategy, error) {
	return DelayedListen, fmt.Errorf("listener: holding SYNs is not implemented on %s", runtime.GOOS)
}

func (h *Held) start() error {
	switch h.cfg.Strategy {
	case Auto, DelayedListen:
		return h.startDelayed()
	}
	return fmt.Errorf("listener: strategy %v is not implemented on %s", h.cfg.Strategy, runtime.GOOS)
}

func (h *Held) open() error { return h.listenNow() }

func detachChild(net.Conn) {}

// release starts listening at the instant want. It runs on the clock.
func (h *Held) release(want time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released || h.isClosed() {
		return
	}
	h.released, h.job = true, nil
	err := h.open()
	h.releasedAt = time.Now()
	h.emit(Event{Kind: Released, Time: h.releasedAt, Want: want, Err: err})
}

// settle does nothing here: there are no single held SYNs.
func (h *Held) settle(*flow, time.Time) {}

// rehold cannot put a hold back: delayed listen has listened.
func (h *Held) rehold() error {
	return fmt.Errorf("listener: strategy delayed-listen cannot hold again once it listens: %w", errors.ErrUnsupported)
}

// syncCapture does nothing: there is no capture here.
func (h *Held) syncCapture() {}

func (h *Held) stop() error {
	var err error
	if h.ln != nil {
		err = h.ln.Close()
	} else {
		err = h.sys.bound.close()
	}
	if h.clk != nil {
		releaseclock.Release()
	}
	return err
}

// Mechanism says how the listener holds SYNs: here always "delayed listen".
func (h *Held) Mechanism() string { return "delayed listen" }
