package replay

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
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

// Socket opens the socket that replays SYNs of one family (unix.AF_INET or
// unix.AF_INET6): IPPROTO_RAW, so the packet is sent with the IP header it
// was captured with, and marked with Mark so that the hold filter lets it
// through. It needs CAP_NET_RAW: without it errors.Is(err, os.ErrPermission).
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

// To is where a SYN captured with destination dst, on interface ifindex, is
// sent on a Socket: the IP header carries the rest, and an IPv6 link-local
// or loopback destination needs the interface.
func To(dst netip.Addr, ifindex int) unix.Sockaddr {
	if dst.Is4() {
		return &unix.SockaddrInet4{Addr: dst.As4()}
	}
	return &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(ifindex)}
}
