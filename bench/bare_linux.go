package main

import (
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/sockopt"
	"github.com/synhold/synhold/listener/capture"
	"golang.org/x/sys/unix"
)

// bareMode is one way of doing the release by hand: the system calls the
// listener makes, in a chosen order, on a clock thread of the benchmark's
// own, with no listener code in between. It is the floor the library's
// release can reach on this machine, and a test bed for changes to it.
type bareMode struct {
	// sendFirst replays the SYN before detaching the filter (the replay
	// carries the mark the filter lets through, so the detach is not
	// needed for it).
	sendFirst bool
	// fifo runs the clock thread under SCHED_FIFO.
	fifo bool
}

// bareVariants are the hand-made release paths.
func bareVariants() []variant {
	return []variant{
		{name: "bare/detach-send", label: "by hand: detach, then replay (the library's order)", bare: &bareMode{}, every: 2,
			note: "same system calls, no listener code", clock: releaseclock.TimerFD, spin: defaultSpin},
		{name: "bare/send-detach", label: "by hand: replay, then detach", bare: &bareMode{sendFirst: true}, every: 2,
			note: "the detach moved after the replay", clock: releaseclock.TimerFD, spin: defaultSpin},
		{name: "bare/fifo", label: "by hand: detach, replay, clock thread SCHED_FIFO", bare: &bareMode{fifo: true}, every: 2,
			note: "sched_setattr(SCHED_FIFO, 10) on the clock thread", clock: releaseclock.TimerFD, spin: defaultSpin},
	}
}

// heldSocket is a listening TCP socket with the hold filter attached before
// listen(2), as the library opens one, plus a raw socket to replay through.
type heldSocket struct {
	ln   *os.File
	raw  int
	addr netip.AddrPort
}

// openHeld opens a held listening socket on local's loopback address.
func openHeld(local netip.AddrPort) (*heldSocket, error) {
	family := unix.AF_INET6
	if local.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	h := &heldSocket{ln: os.NewFile(uintptr(fd), "held"), raw: -1}
	if err := h.setup(fd, family, local); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func (h *heldSocket) setup(fd, family int, local netip.AddrPort) error {
	rc, err := h.ln.SyscallConn()
	if err != nil {
		return err
	}
	if err := sockopt.AttachFilter(rc, replay.HoldFilter()); err != nil {
		return err
	}
	if err := unix.Bind(fd, netaddr.Sockaddr(local)); err != nil {
		return os.NewSyscallError("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return os.NewSyscallError("getsockname", err)
	}
	h.addr = netip.AddrPortFrom(local.Addr(), netaddr.Port(sa))
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return os.NewSyscallError("listen", err)
	}
	h.raw, err = replay.Socket(family)
	return err
}

func (h *heldSocket) close() {
	h.ln.Close()
	if h.raw >= 0 {
		unix.Close(h.raw)
	}
}

// bareTrial holds one client on a held socket and releases it by hand at
// an instant 20-50 ms after its SYN.
func bareTrial(sn *sniffer, m bareMode, i int) (trial, error) {
	local := netip.AddrPortFrom(netip.IPv6Loopback(), 0)
	if i%2 == 0 {
		local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	}
	h, err := openHeld(local)
	if err != nil {
		return trial{}, err
	}
	defer h.close()
	c, err := dialStart(h.addr)
	if err != nil {
		return trial{}, err
	}
	defer c.Close()
	defer sn.forget(c.Local)
	f, err := sn.waitSYN(c.Local, time.Now().Add(time.Second))
	if err != nil {
		return trial{}, err
	}
	ip := append([]byte(nil), f.ip...)
	if err := capture.FixChecksum(ip); err != nil {
		return trial{}, err
	}
	want := time.Now().Add(instantOffset())
	opened, sent, err := bareRelease(h, ip, want, m)
	if err != nil {
		return trial{}, err
	}
	t, err := measure(sn, nil, c, want)
	t.opened, t.openedOK = opened.Sub(want), true
	t.replayed, t.replayedOK = sent.Sub(want), true
	return t, err
}

// bareRelease runs the release on a new locked thread, as the library's
// clock does when its first listener opens: timerfd at want less the spin,
// spin, then detach and replay. It returns when each was done.
func bareRelease(h *heldSocket, ip []byte, want time.Time, m bareMode) (opened, sent time.Time, err error) {
	type result struct {
		opened, sent time.Time
		err          error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var r result
		r.opened, r.sent, r.err = bareClock(h, ip, want, m)
		ch <- r
	}()
	r := <-ch
	return r.opened, r.sent, r.err
}

// bareClock is the body of bareRelease, on its locked thread.
func bareClock(h *heldSocket, ip []byte, want time.Time, m bareMode) (opened, sent time.Time, err error) {
	if _, err := prepareThread(m.fifo); err != nil && m.fifo {
		return opened, sent, err
	}
	rc, err := h.ln.SyscallConn()
	if err != nil {
		return opened, sent, err
	}
	lo, err := loopback()
	if err != nil {
		return opened, sent, err
	}
	to := replay.To(h.addr.Addr(), lo)
	sl, err := releaseclock.NewSleeper()
	if err != nil {
		return opened, sent, err
	}
	defer sl.Close()
	if _, err := sl.Wait(want, defaultSpin); err != nil {
		return opened, sent, err
	}
	detach := func() error {
		err := sockopt.DetachFilter(rc)
		opened = time.Now()
		return err
	}
	if !m.sendFirst {
		if err := detach(); err != nil {
			return opened, sent, err
		}
	}
	if err := unix.Sendto(h.raw, ip, 0, to); err != nil {
		return opened, sent, os.NewSyscallError("sendto", err)
	}
	sent = time.Now()
	if m.sendFirst {
		err = detach()
	}
	return opened, sent, err
}
