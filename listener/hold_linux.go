package listener

import (
	"errors"
	"os"
	"sync"

	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/tune"
)

type sysState struct {
	eng       *engine
	bound     bound    // strategy DelayedListen, until it listens
	queueHold bool     // SYNs held by a full accept queue, not the filter
	plug      *os.File // the connection that fills it
}

// Probe reports the strategy Auto picks here, with the contract of a
// feature probe: the error is nil when strategy Replay works; it satisfies
// errors.Is(err, os.ErrPermission), and names CAP_NET_RAW, when the process
// may not capture (the only case in which Auto falls back to Retransmit);
// any other error is inconclusive (Replay may still work). A nil or
// permission result is remembered: later calls return it at once, without
// opening a capture socket again.
func Probe() (Strategy, error) {
	probeMu.Lock()
	defer probeMu.Unlock()
	if probed {
		return probeStrategy, probeErr
	}
	e, err := acquireEngine(tune.Get())
	if err == nil {
		e.release()
	}
	s := Replay
	if err != nil {
		s = Retransmit
	}
	if err == nil || errors.Is(err, os.ErrPermission) {
		probed, probeStrategy, probeErr = true, s, err
	}
	return s, err
}

var (
	probeMu       sync.Mutex
	probed        bool
	probeStrategy Strategy
	probeErr      error
)

// forgetProbe makes the next Probe look again; for tests that change what
// the process may do.
func forgetProbe() {
	probeMu.Lock()
	probed = false
	probeMu.Unlock()
}

func (h *Held) start() error {
	s := h.cfg.Strategy
	if s == DelayedListen {
		return h.startDelayed()
	}
	if s == Auto || s == Replay {
		eng, err := acquireEngine(h.tune)
		switch {
		case err == nil:
			h.sys.eng, s = eng, Replay
		case s == Auto && errors.Is(err, os.ErrPermission):
			s = Retransmit
		default:
			return err
		}
	}
	h.strategy = s
	if err := h.startHeld(); err != nil {
		if h.sys.eng != nil {
			h.sys.eng.release()
		}
		return err
	}
	return nil
}

func (h *Held) startHeld() error {
	if h.cfg.Decide != nil && h.strategy != Replay {
		return ErrNeedsReplay
	}
	if err := h.acquireClock(); err != nil {
		return err
	}
	if err := h.listenHeld(); err != nil {
		releaseclock.Release()
		return err
	}
	return nil
}

// Mechanism says how the listener holds SYNs: "bpf filter", "full accept
// queue" (where the kernel refuses the filter), or "delayed listen".
func (h *Held) Mechanism() string {
	switch {
	case h.strategy == DelayedListen:
		return "delayed listen"
	case h.sys.queueHold:
		return "full accept queue"
	}
	return "bpf filter"
}

// unregister stops the engine handing h packets.
func (s *sysState) unregister(h *Held) {
	if s.eng != nil {
		s.eng.unregister(h)
	}
}

// close lets go of the plug and the engine.
func (s *sysState) close() {
	s.closePlug()
	if s.eng != nil {
		s.eng.release()
	}
}
