package sockopt

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// AttachFilter attaches the classic BPF program prog to the socket
// (SO_ATTACH_FILTER). A filter on a listening TCP socket sees each segment
// from its TCP header on; a segment it rejects is dropped without a reply.
// Attaching replaces any filter already there, atomically.
func AttachFilter(c syscall.RawConn, prog []bpf.RawInstruction) error {
	if len(prog) == 0 {
		return control(c, "attach filter", func(int) error {
			return os.NewSyscallError("setsockopt", unix.EINVAL)
		})
	}
	fprog := unix.SockFprog{
		Len:    uint16(len(prog)),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0])),
	}
	return control(c, "attach filter", func(fd int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog))
	})
}

// DetachFilter removes the socket's BPF filter (SO_DETACH_FILTER). Detaching
// a socket that has none is not an error.
func DetachFilter(c syscall.RawConn) error {
	return control(c, "detach filter", func(fd int) error {
		err := setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
		if err == unix.ENOENT {
			return nil
		}
		return os.NewSyscallError("setsockopt", err)
	})
}

// SetTimestampNS asks the kernel to attach its receive time, in nanoseconds
// of CLOCK_REALTIME, to every datagram read with recvmsg(2) (SO_TIMESTAMPNS).
func SetTimestampNS(c syscall.RawConn, on bool) error {
	return setInt(c, "set SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, boolInt(on))
}

// SetMark sets SO_MARK: packets sent through the socket carry mark, which a
// BPF filter can read (SKF_AD_MARK). It needs CAP_NET_RAW or CAP_NET_ADMIN.
func SetMark(c syscall.RawConn, mark uint32) error {
	return setInt(c, "set SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, int(mark))
}

// SetReceiveBuffer sets SO_RCVBUF, and tries SO_RCVBUFFORCE first so that a
// privileged caller may go past net.core.rmem_max.
func SetReceiveBuffer(c syscall.RawConn, bytes int) error {
	if setInt(c, "set SO_RCVBUFFORCE", unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes) == nil {
		return nil
	}
	return setInt(c, "set SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
}
