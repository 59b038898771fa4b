package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/sockopt"
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
		if h.sys.plug, h.plugAddr, err = plugSocket(h.local); err != nil {
			return err
		}
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
		close(h.listening)
	}
	return nil
}

// open stops holding: the filter goes, or listen(2) is called.
func (h *Held) open() error {
	if h.strategy == DelayedListen {
		return h.listenNow()
	}
	if h.sys.queueHold {
		var lerr error
		if err := h.rc.Control(func(fd uintptr) { lerr = listenFunc(int(fd), unix.SOMAXCONN) }); err != nil {
			return err
		}
		close(h.listening)
		return os.NewSyscallError("listen", lerr)
	}
	return sockopt.DetachFilter(h.rc)
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
		return fmt.Errorf("listener: holding again with a full accept queue (the kernel refused the hold filter): %w", errors.ErrUnsupported)
	}
	if err := sockopt.AttachFilter(h.rc, replay.HoldFilter()); err != nil {
		return fmt.Errorf("listener: hold again: %w", err)
	}
	return nil
}
