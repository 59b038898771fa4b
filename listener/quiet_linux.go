package listener

import (
	"fmt"
	"time"
)

// quietWait bounds how long a released quiet listener waits for the
// SYN-ACKs of the handshakes its release let through before it leaves the
// capture all the same (a client gone, a SYN-ACK the capture missed).
const quietWait = time.Second

// quietAfterRelease starts leaving a quiet listener's port out of the
// capture, once the handshakes let through since the latest Hold have had
// their SYN-ACKs captured; h.mu is held, by a release. The filter is
// changed on a goroutine of its own, not on the release clock's.
func (h *Held) quietAfterRelease() {
	if !h.cfg.Quiet || h.sys.eng == nil {
		return
	}
	h.awaiting = make(map[*flow]struct{})
	for _, f := range h.flows {
		if f.released && !f.refuse && f.hs.SYNACK.IsZero() && !f.hs.Released.Before(h.holdSince) {
			h.awaiting[f] = struct{}{}
		}
	}
	h.quietBy = time.Now().Add(quietWait)
	if len(h.awaiting) > 0 {
		time.AfterFunc(quietWait, h.goQuiet)
		return
	}
	go h.goQuiet()
}

// quietSYNACK notes that f's SYN-ACK was captured; h.mu is held.
func (h *Held) quietSYNACK(f *flow) {
	if _, ok := h.awaiting[f]; !ok {
		return
	}
	delete(h.awaiting, f)
	if len(h.awaiting) == 0 {
		go h.goQuiet()
	}
}

// goQuiet leaves a released quiet listener's port out of the capture, if
// it is still released and has no SYN-ACK to wait for.
func (h *Held) goQuiet() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed() || !h.released || h.muted || h.awaiting == nil {
		return
	}
	if len(h.awaiting) > 0 && time.Now().Before(h.quietBy) {
		return
	}
	h.mute()
}

// mute leaves the port out of the capture; h.mu is held. Its callers
// (goQuiet, and Hold putting back a muted listener) reach it only on a
// quiet listener with an engine, which quietAfterRelease checked. A filter
// that cannot be changed only costs wake-ups: the listener stays in.
func (h *Held) mute() {
	if err := h.sys.eng.setQuiet(h, true); err == nil {
		h.muted, h.awaiting = true, nil
	}
}

// unmute puts a quiet listener's port back in the capture, and returns once
// the kernel filters with it; h.mu is held.
func (h *Held) unmute() error {
	if !h.muted {
		return nil
	}
	if err := h.sys.eng.setQuiet(h, false); err != nil {
		return fmt.Errorf("listener: hold again: %w", err)
	}
	h.muted = false
	return nil
}
