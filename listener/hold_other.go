//go:build !linux

package listener

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"
)

type flowSys struct{}

type sysState struct {
	bound bound
}

// Probe reports the strategy Auto picks here: DelayedListen, since holding
// SYNs is Linux's; the error wraps errors.ErrUnsupported.
func Probe() (Strategy, error) {
	return DelayedListen, fmt.Errorf("listener: holding SYNs (strategy replay) on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func (h *Held) start() error {
	switch h.cfg.Strategy {
	case Auto, DelayedListen:
		return h.startDelayed()
	}
	return fmt.Errorf("listener: strategy %v on %s: %w", h.cfg.Strategy, runtime.GOOS, errors.ErrUnsupported)
}

func (h *Held) open() error { return h.listenNow() }

func detachChild(net.Conn) {}

// Config.Quiet does nothing here: there is no capture.
func (h *Held) quietAfterRelease() {}
func (h *Held) mute()              {}
func (h *Held) unmute() error      { return nil }

// replayHeld does nothing: there are no single held SYNs here.
func (h *Held) replayHeld(time.Time) (int, []*flow, error) { return 0, nil, nil }

// settle does nothing here: there are no single held SYNs.
func (h *Held) settle(*flow, time.Time) {}

// rehold cannot put a hold back: delayed listen has listened.
func (h *Held) rehold() error {
	return fmt.Errorf("listener: strategy delayed-listen cannot hold again once it listens: %w", errors.ErrUnsupported)
}

// syncCapture does nothing: there is no capture here.
func (h *Held) syncCapture() {}

func (s *sysState) unregister(*Held) {}

func (s *sysState) close() {}

// Mechanism says how the listener holds SYNs: here always "delayed listen".
func (h *Held) Mechanism() string { return "delayed listen" }

// lead is 0: there is no replay to start early here.
func (h *Held) lead() time.Duration { return 0 }

// preparer is nil: there is no replay to warm here.
func (h *Held) preparer() func() { return nil }
