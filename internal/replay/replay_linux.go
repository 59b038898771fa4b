package replay

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/rawconn"
	"github.com/synhold/synhold/internal/sockopt"
)

// tcpACK and tcpSYN are the TCP header's flag bits the filter tests.
const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

// HoldFilter returns the classic BPF program of a held listening socket: it
// drops pure SYNs (SYN set, ACK clear) unless they carry Mark; everything
// else passes. Connections accepted from the listener inherit the filter,
// and pass all their segments through it.
func HoldFilter() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 13, Size: 1}, // TCP flags
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpACK, SkipTrue: 4},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: tcpSYN, SkipTrue: 3},
		/* 3 */ bpf.LoadExtension{Num: bpf.ExtMark},
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: Mark, SkipTrue: 1},
		/* 5 */ bpf.RetConstant{Val: 0},
		/* 6 */ bpf.RetConstant{Val: 0xffffffff},
	})
	if err != nil {
		panic(err) // a constant program
	}
	return prog
}

// Socket opens a blocking raw socket of family marked with Mark, as a bare
// descriptor, for callers that make the system calls themselves (the
// benchmarks' release by hand); the listener uses Open. It needs
// CAP_NET_RAW: without it errors.Is(err, os.ErrPermission).
func Socket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("replay: %w", os.NewSyscallError("socket", err))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, Mark); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("replay: set SO_MARK: %w", os.NewSyscallError("setsockopt", err))
	}
	return fd, nil
}

// Conn is a raw socket that replays SYNs (and sends RSTs) of one family,
// owned by the runtime poller, as net's sockets are: non-blocking, and its
// sends go through rawconn (EINTR retried, EAGAIN waited out in the
// poller). It carries Mark, set through sockopt.
type Conn struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
}

// Open opens a Conn of family (unix.AF_INET or unix.AF_INET6): IPPROTO_RAW,
// so each packet is sent with the IP header it carries. It needs
// CAP_NET_RAW: without it errors.Is(err, os.ErrPermission).
func Open(family int) (*Conn, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), "replay")
	rc, err := f.SyscallConn()
	if err == nil {
		err = sockopt.SetMark(rc, Mark)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	return &Conn{f: f, rc: rc}, nil
}

// Send sends the IP packet b to to (see To). It allocates nothing (the
// clock thread calls it for each release, and a thread that allocates
// while the garbage collector marks is made to help it, for as long as
// the allocation's share of the marking takes), and senders on other
// threads are not serialised: each takes a sender of the pool's. After
// Close it fails with os.ErrClosed.
func (c *Conn) Send(b []byte, to unix.Sockaddr) error {
	s := senders.Get().(*sender)
	s.b, s.to = b, to
	err := s.op.Write(c.rc)
	s.b, s.to = nil, nil
	senders.Put(s)
	switch {
	case err != nil && c.closed.Load():
		return fmt.Errorf("replay: send: %w", os.ErrClosed)
	case err != nil:
		return fmt.Errorf("replay: send: %w", err)
	}
	return nil
}

// sender is one sendto(2) through rawconn, as an Op built once, so that a
// Send allocates nothing (rawconn.Write's callback would be two
// allocations a send).
type sender struct {
	b  []byte
	to unix.Sockaddr
	op *rawconn.Op // of s.sendto
}

var senders = sync.Pool{New: func() any {
	s := &sender{}
	s.op = rawconn.NewOp("sendto", s.sendto)
	return s
}}

func (s *sender) sendto(fd int) error { return sendto(fd, s.b, 0, s.to) }

// sendto is the seam through which a Conn sends; tests replace it to
// inject errors.
var sendto = unix.Sendto

// Close closes the socket; a Send blocked in it returns os.ErrClosed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

// To is where a SYN captured with destination dst, on interface ifindex, is
// sent on a Socket: the IP header carries the rest, and an IPv6 link-local
// or loopback destination needs the interface.
func To(dst netip.Addr, ifindex int) unix.Sockaddr {
	if dst.Is4() {
		return &unix.SockaddrInet4{Addr: dst.As4()}
	}
	return &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(ifindex)}
}
