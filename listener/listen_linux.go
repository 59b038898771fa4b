package listener

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/sockopt"
)

// listenHeld opens the listening socket with the hold in place before
// listen(2), so that no SYN is ever answered early, and registers it with the
// engine before listen(2), so that none goes unseen. The hold is the BPF
// filter; where the kernel refuses it (classic socket filters need
// CAP_NET_ADMIN when kernel.unprivileged_bpf_disabled is set), it is a full
// accept queue instead.
func (h *Held) listenHeld() error {
	f, err := socketFile(h.local, h.dual)
	if err != nil {
		return err
	}
	defer f.Close() // net.FileListener keeps a duplicate
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	backlog := unix.SOMAXCONN
	switch err := sockopt.AttachFilter(rc, replay.HoldFilter()); {
	case err == nil:
	case errors.Is(err, os.ErrPermission) && h.cfg.Decide == nil:
		h.sys.queueHold, backlog = true, 0
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("listener: a per-connection delay needs the hold filter, and %w (CAP_NET_ADMIN)", err)
	default:
		return fmt.Errorf("listener: %w", err)
	}
	if h.local, err = bindRaw(rc, h.local); err != nil {
		return err
	}
	if h.sys.queueHold {
		var addr netip.AddrPort
		if h.sys.plug, addr, err = plugSocket(h.local); err != nil {
			return err
		}
		h.addPlug(addr)
	}
	if h.sys.eng != nil {
		h.sys.eng.register(h)
	}
	ln, err := listenFile(f, rc, backlog)
	if err == nil && h.sys.queueHold {
		err = plugQueue(h.sys.plug, h.local)
	}
	if err == nil {
		h.rc, err = ln.(*net.TCPListener).SyscallConn()
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		if h.sys.eng != nil {
			h.sys.eng.unregister(h)
		}
		h.sys.closePlug()
		return err
	}
	h.ln = ln
	if !h.sys.queueHold { // else Accept waits for the release: it would take the plug
		h.openGate()
	}
	return nil
}

// open stops holding: the filter goes, or listen(2) is called.
func (h *Held) open() error {
	if h.strategy == DelayedListen {
		return h.listenNow()
	}
	if h.sys.queueHold {
		if err := h.backlog(unix.SOMAXCONN); err != nil {
			return err
		}
		_ = h.ln.(*net.TCPListener).SetDeadline(time.Time{}) // lifts a Hold's wake-up
		h.openGate()
		return nil
	}
	return sockopt.DetachFilter(h.rc)
}

// backlog calls listen(2) again on the listening socket, with backlog n.
func (h *Held) backlog(n int) error {
	var lerr error
	if err := h.rc.Control(func(fd uintptr) { lerr = listenFunc(int(fd), n) }); err != nil {
		return err
	}
	return os.NewSyscallError("listen", lerr)
}

// replug holds a released listener again with a full accept queue: Accept
// is stopped at its gate (and woken if it waits in accept(2)), a new plug
// connects while the backlog is still high, then the backlog goes to 0, so
// that the plug (and whatever else is queued) fills the queue. h.mu is held.
func (h *Held) replug() error {
	tl := h.ln.(*net.TCPListener)
	h.shutGate()
	_ = tl.SetDeadline(time.Unix(1, 0)) // wakes an Accept in accept(2)
	// An Accept woken for a connection rather than by the deadline could
	// still take the new plug, leaving room in the queue for a client:
	// wait for every Accept past the gate to leave (a new one meets the
	// deadline before accept(2)).
	for end := time.Now().Add(time.Second); h.accepting.Load() > 0 && time.Now().Before(end); {
		time.Sleep(50 * time.Microsecond)
	}
	undo := func(err error) error {
		_ = tl.SetDeadline(time.Time{})
		h.openGate()
		return fmt.Errorf("listener: hold again: %w", err)
	}
	plug, addr, err := plugSocket(h.local)
	if err != nil {
		return undo(err)
	}
	h.gateMu.Lock()
	old := h.plugNow
	h.gateMu.Unlock()
	h.addPlug(addr) // before its SYN, so that onSYN ignores it
	err = plugQueue(plug, h.local)
	if err == nil {
		err = h.backlog(0)
	}
	if err != nil {
		plug.Close()
		h.dropPlug(addr, old)
		return undo(err)
	}
	h.sys.closePlug()
	h.sys.plug = plug
	return nil
}

// detachChild removes the hold filter that an accepted connection inherited.
func detachChild(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = sockopt.DetachFilter(rc)
		}
	}
}

// rehold puts the hold back on a released listener; h.mu is held.
func (h *Held) rehold() error {
	switch {
	case h.strategy == DelayedListen:
		return fmt.Errorf("listener: strategy delayed-listen cannot hold again once it listens: %w", errors.ErrUnsupported)
	case h.sys.queueHold:
		return h.replug()
	}
	if err := sockopt.AttachFilter(h.rc, replay.HoldFilter()); err != nil {
		return fmt.Errorf("listener: hold again: %w", err)
	}
	return nil
}
