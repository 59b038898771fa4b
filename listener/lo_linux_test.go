package listener

import (
	"encoding/binary"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener/capture"
)

// loSegment is a TCP segment as an observer on lo saw it, with the kernel's
// stamp.
type loSegment struct {
	capture.Segment
	Time time.Time
}

// watchLo opens an AF_PACKET socket of the test's own on lo, with a filter
// of its own that keeps the TCP segments from or to port, and returns its
// reader: the next segment lo received (the received copy, as libpcap
// records it; the sent copy is left out, so each segment comes once), or
// false at deadline. The kernel stamps it when it hands it to the socket:
// watchLo returns once it does (see stampsOn).
func watchLo(t *testing.T, port uint16) (next func(deadline time.Time) (loSegment, bool)) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	testenv.SkipWithoutPrivilege(t, os.NewSyscallError("socket(AF_PACKET)", err), "CAP_NET_RAW")
	t.Cleanup(func() { unix.Close(fd) })
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipFalse: 4},
		bpf.LoadAbsolute{Off: 9, Size: 1}, // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: 10},
		bpf.LoadMemShift{Off: 0},
		bpf.Jump{Skip: 3},
		bpf.LoadAbsolute{Off: 6, Size: 1}, // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: 6},
		bpf.LoadConstant{Dst: bpf.RegX, Val: 40},
		bpf.LoadIndirect{Off: 0, Size: 2}, // TCP source port
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipTrue: 2},
		bpf.LoadIndirect{Off: 2, Size: 2}, // TCP destination port
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(port), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: 1}); err != nil {
		t.Fatal(err)
	}
	stampsOn(t)
	buf, oob := make([]byte, 65536), make([]byte, 256)
	return func(deadline time.Time) (loSegment, bool) {
		for time.Now().Before(deadline) {
			tv := unix.NsecToTimeval(int64(time.Until(deadline)) + 1000)
			_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				continue
			}
			ll, _ := from.(*unix.SockaddrLinklayer)
			seg, err := capture.Decode(buf[:n])
			if err != nil || ll == nil || ll.Pkttype != unix.PACKET_HOST {
				continue
			}
			return loSegment{seg, stampOf(t, oob[:oobn])}, true
		}
		return loSegment{}, false
	}
}

// observer watches lo (watchLo) for the SYN-ACKs from port, and returns the
// stamp of the next one (the received copy, as libpcap records it), or the
// zero time at deadline.
func observer(t *testing.T, port uint16) (read func(deadline time.Time) time.Time) {
	t.Helper()
	next := watchLo(t, port)
	return func(deadline time.Time) time.Time {
		for {
			s, ok := next(deadline)
			if !ok {
				return time.Time{}
			}
			if s.Src.Port() == port && s.IsSYNACK() {
				return s.Time
			}
		}
	}
}

// stampOf returns the SCM_TIMESTAMPNS stamp in oob; it fails t without one.
func stampOf(t *testing.T, oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		t.Fatalf("control messages: %v", err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			return time.Unix(sec, nsec)
		}
	}
	t.Fatal("no SCM_TIMESTAMPNS stamp on a socket with SO_TIMESTAMPNS")
	return time.Time{}
}

// stampsOn returns once the kernel stamps received packets when it hands
// them to a socket, as a test comparing two sockets' stamps assumes, rather
// than at recvmsg (the first SO_TIMESTAMPNS of the host only schedules the
// switch; see capture.Open). It opens a capture on lo, whose Open waits for
// that, and closes it: a socket of the caller's with SO_TIMESTAMPNS keeps
// stamping on after.
func stampsOn(t *testing.T) {
	t.Helper()
	c, err := capture.Open(capture.Config{Ifindex: loopbackIfindex})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
