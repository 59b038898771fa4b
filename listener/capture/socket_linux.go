package capture

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/rawconn"
	"github.com/synhold/synhold/internal/sockopt"
)

// Socket is an AF_PACKET socket that receives the TCP SYNs a host gets and
// the SYN-ACKs it sends, each with the kernel's timestamp. Reads go through
// the runtime poller: they honour deadlines and Close wakes them.
type Socket struct {
	closed atomic.Bool
	cfg    Config

	portsMu sync.Mutex
	ports   []uint16 // the ports in the filter; nil: every port (unless none)
	none    bool     // the filter keeps nothing (KeepNone)
	f       *os.File
	rc      syscall.RawConn
	buf     []byte
	oob     []byte

	// Sync's state: requests made and the latest one served. Sync wakes a
	// blocked ReadPacket through a read deadline in the past, which
	// ReadPacket then puts back to the caller's own.
	syncReq  atomic.Uint64
	deadline atomic.Int64 // the caller's read deadline, UnixNano; 0 none
	syncMu   sync.Mutex
	syncDone uint64
	synced   chan struct{} // closed and replaced when syncDone moves
}

// Seams for fault injection in tests.
var (
	socketFunc   = unix.Socket
	bindFunc     = unix.Bind
	recvmsgFunc  = unix.Recvmsg
	attachFilter = sockopt.AttachFilter
)

// transient reports whether a recvmsg error is worth retrying: the kernel
// was short of memory for a moment. (rawconn retries an interrupted call.)
func transient(err error) bool {
	return err == unix.ENOBUFS || err == unix.ENOMEM
}

// maxTransient bounds the transient errors in a row ReadPacket retries
// before it returns the last one.
const maxTransient = 100

// Open opens a capture socket. It needs CAP_NET_RAW; without it the error
// satisfies errors.Is(err, os.ErrPermission). The socket is created with
// protocol 0, so that it receives nothing until its filter is attached and
// it is bound: there is no window in which unfiltered packets queue up.
// Where its receive stamps are the host's first, Open returns once the
// kernel has switched stamping on (a kernel work item, 2 s at most), so
// that no packet it reads carries the time of the read instead of its
// arrival.
func Open(cfg Config) (*Socket, error) {
	switch {
	case cfg.Ifindex < 0 || cfg.SkipIfindex < 0:
		return nil, fmt.Errorf("capture: open: negative interface index (Ifindex %d, SkipIfindex %d)", cfg.Ifindex, cfg.SkipIfindex)
	case cfg.Ifindex != 0 && cfg.SkipIfindex != 0:
		return nil, fmt.Errorf("capture: open: SkipIfindex %d is for a socket on every interface, not one bound to interface %d: leave one of them 0", cfg.SkipIfindex, cfg.Ifindex)
	}
	fd, err := socketFunc(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("capture: open: %w", os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), "capture")
	s, err := setup(f, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func setup(f *os.File, cfg Config) (*Socket, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	prog, err := bpf.Assemble(filter(cfg, nil))
	if err != nil {
		return nil, fmt.Errorf("capture: assemble filter: %w", err)
	}
	if err := attachFilter(rc, prog); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := sockopt.SetTimestampNS(rc, true); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	_ = sockopt.SetReceiveBuffer(rc, 4<<20) // a larger queue is best effort
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: cfg.Ifindex}
	if err := rawconn.Control(rc, "bind", func(fd int) error { return bindFunc(fd, sa) }); err != nil {
		return nil, fmt.Errorf("capture: bind to interface %d: %w", cfg.Ifindex, err)
	}
	// The socket's SO_TIMESTAMPNS may be the host's first: wait until the
	// kernel stamps on arrival, so that no packet read is stamped late.
	waitStamping(stampingLimit)
	return &Socket{cfg: cfg, f: f, rc: rc, buf: make([]byte, 65536), oob: make([]byte, 128), synced: make(chan struct{})}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ReadPacket blocks until the next SYN or SYN-ACK arrives, the read deadline
// passes, or the socket is closed. Packets that do not decode are skipped,
// and transient errors (ENOBUFS, ENOMEM; rawconn retries EINTR) are retried;
// any other error is returned.
func (s *Socket) ReadPacket() (Packet, error) {
	for failures := 0; ; {
		var (
			n, oobn int
			from    unix.Sockaddr
		)
		err := rawconn.Read(s.rc, "recvmsg", func(fd int) (err error) {
			req := s.syncReq.Load() // requests made before this recvmsg
			n, oobn, _, from, err = recvmsgFunc(fd, s.buf, s.oob, 0)
			if err == unix.EAGAIN {
				s.served(req) // everything queued before req is read
			}
			return err
		})
		var serr *os.SyscallError
		switch {
		case err != nil && s.closed.Load():
			return Packet{}, fmt.Errorf("capture: read: %w", os.ErrClosed)
		case errors.Is(err, os.ErrDeadlineExceeded) && !s.callerDeadlinePassed():
			// A Sync's wake-up, not the caller's deadline: put that back.
			// (Asking the deadline, not counting wake-ups, is what makes
			// overlapping Syncs safe: a wake-up that lands after the
			// restore is recognised the same way.)
			s.restoreDeadline()
			continue
		case errors.As(err, &serr) && transient(serr.Err) && failures < maxTransient:
			failures++
			continue
		case err != nil:
			return Packet{}, fmt.Errorf("capture: read: %w", err)
		}
		failures = 0
		p, err := s.packet(s.buf[:n], s.oob[:oobn], from)
		if err == nil {
			return p, nil
		}
	}
}

// Sync returns once every packet the socket had queued when Sync was called
// has been returned by ReadPacket, and ReadPacket was called again: a
// goroutine that handles each packet before it reads the next has then
// handled them all. It needs a goroutine in ReadPacket; it gives up at
// deadline and returns os.ErrDeadlineExceeded.
func (s *Socket) Sync(deadline time.Time) error {
	req := s.syncReq.Add(1)
	_ = s.f.SetReadDeadline(time.Unix(0, 1)) // wakes a blocked ReadPacket
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		s.syncMu.Lock()
		done, ch := s.syncDone, s.synced
		s.syncMu.Unlock()
		if done >= req {
			return nil
		}
		if s.closed.Load() {
			return fmt.Errorf("capture: sync: %w", os.ErrClosed)
		}
		select {
		case <-ch:
		case <-t.C:
			return fmt.Errorf("capture: sync: %w", os.ErrDeadlineExceeded)
		}
	}
}

// served records that the requests up to req are served.
func (s *Socket) served(req uint64) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if req > s.syncDone {
		s.syncDone = req
		close(s.synced)
		s.synced = make(chan struct{})
	}
}

// callerDeadlinePassed reports whether the read deadline the caller set
// with SetReadDeadline has passed.
func (s *Socket) callerDeadlinePassed() bool {
	ns := s.deadline.Load()
	return ns != 0 && time.Now().UnixNano() >= ns
}

func (s *Socket) restoreDeadline() {
	var t time.Time
	if ns := s.deadline.Load(); ns != 0 {
		t = time.Unix(0, ns)
	}
	_ = s.f.SetReadDeadline(t)
}

func (s *Socket) packet(b, oob []byte, from unix.Sockaddr) (Packet, error) {
	seg, err := Decode(b)
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Segment: seg, IP: b, Time: kernelTime(oob)}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		p.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		p.Loopback = ll.Hatype == unix.ARPHRD_LOOPBACK
		p.Ifindex = ll.Ifindex
	}
	return p, nil
}

// kernelTime returns the SCM_TIMESTAMPNS time in oob, or now if there is none.
func kernelTime(oob []byte) time.Time {
	if t, ok := stampIn(oob); ok {
		return t
	}
	return time.Now()
}

// stampIn returns the SCM_TIMESTAMPNS time in oob, if there is one.
func stampIn(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				return time.Unix(ts.Unix()), true
			}
		}
	}
	return time.Time{}, false
}

// SetPorts makes the socket keep only the SYNs to, and the SYN-ACKs from,
// the local ports given: the kernel drops the handshakes of other programs
// in the filter, before they are queued, and the reader is not woken for
// them. No ports, or more than 200, keep every port again, as Open does
// (KeepNone keeps none). The kernel swaps the filter in one step, so no
// packet meets neither filter; packets queued before the swap are still
// read; SetPorts returns once the new filter is in place, so that a packet
// the kernel receives after it returns meets it. A new filter costs ~80 µs
// (assembled, checked and compiled by the kernel), so a call that leaves
// the filter as it is does nothing.
func (s *Socket) SetPorts(ports []uint16) error {
	ports = slices.Compact(slices.Sorted(slices.Values(ports)))
	if len(ports) > maxPorts || len(ports) == 0 {
		ports = nil
	}
	return s.setFilter(ports, false)
}

// KeepNone makes the socket keep no packet at all, until the next SetPorts:
// a socket that has no port to watch is then not woken by any handshake,
// where SetPorts with no ports would keep every port. It swaps the filter
// as SetPorts does, and does nothing on a socket that keeps none already.
func (s *Socket) KeepNone() error { return s.setFilter(nil, true) }

// setFilter attaches the filter that keeps ports (nil: every port), or
// nothing if none, unless it is the one attached.
func (s *Socket) setFilter(ports []uint16, none bool) error {
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	if none == s.none && slices.Equal(ports, s.ports) {
		return nil
	}
	insns := []bpf.Instruction{bpf.RetConstant{Val: 0}}
	if !none {
		insns = filter(s.cfg, ports)
	}
	prog, err := bpf.Assemble(insns)
	if err != nil {
		return fmt.Errorf("capture: assemble filter: %w", err)
	}
	if err := attachFilter(s.rc, prog); err != nil {
		return fmt.Errorf("capture: set ports: %w", err)
	}
	s.ports, s.none = ports, none
	return nil
}

// SetReadDeadline sets the deadline for ReadPacket.
func (s *Socket) SetReadDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	s.deadline.Store(ns)
	return s.f.SetReadDeadline(t)
}

// Close closes the socket and wakes a blocked ReadPacket and Sync.
func (s *Socket) Close() error {
	s.closed.Store(true)
	err := s.f.Close()
	s.syncMu.Lock()
	close(s.synced)
	s.synced = make(chan struct{})
	s.syncMu.Unlock()
	return err
}

// maxPorts is the most ports SetPorts puts in the filter: the filter's
// conditional jumps reach at most 255 instructions ahead.
const maxPorts = 200

// filter returns the classic BPF program of a capture socket (SOCK_DGRAM, so
// the data starts at the IP header). It keeps unfragmented IPv4 and IPv6 TCP
// segments with SYN set that are a client's SYN as received (no ACK, not
// outgoing), or this host's SYN-ACK as sent (outgoing) and, on a loopback
// interface, also as received, and drops any packet marked cfg.IgnoreMark
// (0: none) and any packet of interface cfg.SkipIfindex (0: none). With
// ports (at most maxPorts), it keeps only SYNs to and SYN-ACKs from those
// local ports. On loopback every packet is seen twice, once sent and once
// received: this keeps the received copy of a SYN, the one tcpdump records,
// and both copies of a SYN-ACK (Packet.Outgoing tells them apart), since
// the received one is what tcpdump records and the client gets.
func filter(cfg Config, ports []uint16) []bpf.Instruction {
	var portCheck []bpf.Instruction
	if len(ports) > 0 {
		portCheck = []bpf.Instruction{
			bpf.LoadScratch{Dst: bpf.RegA, N: 0},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: uint32(ACK), SkipTrue: 2},
			bpf.LoadIndirect{Off: 2, Size: 2}, // a SYN's destination port
			bpf.Jump{Skip: 1},
			bpf.LoadIndirect{Off: 0, Size: 2}, // a SYN-ACK's source port
		}
		for i, p := range ports {
			portCheck = append(portCheck, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(p), SkipTrue: uint8(len(ports) - i)})
		}
		portCheck = append(portCheck, bpf.Jump{Skip: 1}) // to the drop
	}
	body := segmentFilter(cfg.IgnoreMark, portCheck)
	if cfg.SkipIfindex == 0 {
		return body
	}
	// First, so that a skipped interface's packets cost two instructions.
	return append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(cfg.SkipIfindex), SkipTrue: uint8(len(body) - 1)}, // to body's drop
	}, body...)
}

// segmentFilter is the body of filter; see there. portCheck runs before a
// packet is kept; it falls through to keep it and jumps one ahead to drop
// it. The last instruction drops the packet.
func segmentFilter(ignoreMark uint32, portCheck []bpf.Instruction) []bpf.Instruction {
	check := 25
	accept := check + len(portCheck)
	drop := accept + 1
	skip := func(from, to int) uint8 { return uint8(to - from - 1) }
	markDrop := skip(16, drop)
	if ignoreMark == 0 {
		markDrop = 0 // both branches fall through: no packet is ignored
	}
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadExtension{Num: bpf.ExtProto},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipFalse: skip(1, 8)},
		/* 2 */ bpf.LoadAbsolute{Off: 9, Size: 1},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: skip(3, drop)},
		/* 4 */ bpf.LoadAbsolute{Off: 6, Size: 2},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff, SkipTrue: skip(5, drop)},
		/* 6 */ bpf.LoadMemShift{Off: 0},
		/* 7 */ bpf.Jump{Skip: uint32(skip(7, 12))},
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipFalse: skip(8, drop)},
		/* 9 */ bpf.LoadAbsolute{Off: 6, Size: 1},
		/* 10 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: skip(10, drop)},
		/* 11 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 40},
		/* 12 */ bpf.LoadIndirect{Off: 13, Size: 1}, // X is the TCP header's offset from here on
		/* 13 */ bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: uint32(SYN), SkipTrue: skip(13, drop)},
		/* 14 */ bpf.StoreScratch{Src: bpf.RegA, N: 0},
		/* 15 */ bpf.LoadExtension{Num: bpf.ExtMark},
		/* 16 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: ignoreMark, SkipTrue: markDrop},
		/* 17 */ bpf.LoadExtension{Num: bpf.ExtType},
		/* 18 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipFalse: skip(18, 21)},
		/* 19 */ bpf.LoadScratch{Dst: bpf.RegA, N: 0},
		/* 20 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: uint32(ACK), SkipTrue: skip(20, check), SkipFalse: skip(20, drop)},
		/* 21 */ bpf.LoadScratch{Dst: bpf.RegA, N: 0},
		/* 22 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: uint32(ACK), SkipFalse: skip(22, check)},
		/* 23 */ bpf.LoadExtension{Num: bpf.ExtLinkLayerType},
		/* 24 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ARPHRD_LOOPBACK, SkipTrue: skip(24, check), SkipFalse: skip(24, drop)},
	}
	prog = append(prog, portCheck...)
	return append(prog,
		bpf.RetConstant{Val: 0xffff}, // accept
		bpf.RetConstant{Val: 0},      // drop
	)
}
