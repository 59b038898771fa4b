package listener

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/listener/capture"
)

// warmer exercises, shortly before a release, the kernel's path that the
// release takes, so that the release finds it warm after the process idled:
// a marked SYN, sent through the engine's raw socket, to a listening socket
// of the engine's own that holds with the same filter, from the port of a
// bound socket that neither listens nor connects, so that the SYN-ACK it
// draws is answered by the kernel with a RST and nothing is left over.
// Nothing of a client's is touched. (An attach and detach of the hold
// filter as well made each warm-up ~100 µs slower, for a detach that takes
// 6-12 µs: left out.)
type warmer struct {
	ln, src int    // the listening socket and the SYN's source socket; -1 if none
	syn     []byte // the SYN from src to ln, checksums done
	to      unix.Sockaddr
}

// openWarmer opens the warm-up sockets of family on loopback in the calling
// thread's network namespace. Warming is best effort: where loopback has no
// address of the family, it returns nil.
func openWarmer(family int) *warmer {
	lo := netip.MustParseAddr("127.0.0.1")
	if family == unix.AF_INET6 {
		lo = netip.IPv6Loopback()
	}
	w := &warmer{ln: -1, src: -1}
	var err error
	var lport, sport uint16
	if w.ln, lport, err = warmSocket(family, lo); err == nil {
		err = unix.SetsockoptSockFprog(w.ln, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, holdProg())
	}
	if err == nil {
		err = unix.Listen(w.ln, 16)
	}
	if err == nil {
		w.src, sport, err = warmSocket(family, lo)
	}
	if err != nil {
		w.close()
		return nil
	}
	w.syn = warmSYN(netip.AddrPortFrom(lo, sport), netip.AddrPortFrom(lo, lport))
	w.to = replay.To(lo, loopbackIfindex)
	return w
}

// warmSocket opens a TCP socket bound to a free port of addr.
func warmSocket(family int, addr netip.Addr) (int, uint16, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, 0, err
	}
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: addr.As16()}
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Addr: addr.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	var port int
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return fd, uint16(port), nil
}

var (
	holdProgOnce sync.Once
	holdProgVal  *unix.SockFprog
)

// holdProg is the hold filter as setsockopt takes it.
func holdProg() *unix.SockFprog {
	holdProgOnce.Do(func() {
		raw := replay.HoldFilter()
		filter := make([]unix.SockFilter, len(raw))
		for i, r := range raw {
			filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
		}
		holdProgVal = &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	})
	return holdProgVal
}

// warmSYN builds the IP packet of a SYN from src to dst, checksums done.
func warmSYN(src, dst netip.AddrPort) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], 0x5741524d) // "WARM"
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	var ip []byte
	if src.Addr().Is4() {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 40)
		ip[6] = 0x40
		ip[8] = 64
		ip[9] = unix.IPPROTO_TCP
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
	} else {
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], 20)
		ip[6] = unix.IPPROTO_TCP
		ip[7] = 64
		s, d := src.Addr().As16(), dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	b := append(ip, tcp...)
	_ = capture.FixChecksum(b) // a packet of our own making: it parses
	return b
}

// warm runs the path once: the SYN through c.
func (w *warmer) warm(c *replay.Conn) {
	_ = c.Send(w.syn, w.to)
}

func (w *warmer) close() {
	for _, fd := range []int{w.ln, w.src} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// warmShare is how recently a family's path must have been warmed, or
// taken by a replay, for a warm-up to be left out: releases due together
// share one warm-up.
const warmShare = 50 * time.Microsecond

// warm exercises the release's path of the families asked for; see warmer.
// It leaves out a family whose path was warmed or used within warmShare.
func (e *engine) warm(v4, v6 bool) {
	now := time.Now()
	warm := func(w *warmer, c *replay.Conn, last *atomic.Int64) {
		if w == nil || now.Sub(time.Unix(0, last.Load())) < warmShare {
			return
		}
		last.Store(now.UnixNano())
		w.warm(c)
	}
	if v4 {
		warm(e.warm4, e.raw4, &e.lastWarm4)
	}
	if v6 {
		warm(e.warm6, e.raw6, &e.lastWarm6)
	}
}
