package replay

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestToKeepsTheInterfaceForIPv6(t *testing.T) {
	if sa, ok := To(netip.MustParseAddr("127.0.0.1"), 7).(*unix.SockaddrInet4); !ok || sa.Addr != [4]byte{127, 0, 0, 1} || sa.Port != 0 {
		t.Errorf("To(127.0.0.1) = %#v", sa)
	}
	if sa, ok := To(netip.IPv6Loopback(), 1).(*unix.SockaddrInet6); !ok || sa.Addr != netip.IPv6Loopback().As16() || sa.ZoneId != 1 {
		t.Errorf("To(::1, 1) = %#v", sa)
	}
}

func TestSocketIsMarked(t *testing.T) {
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		fd, err := Socket(family)
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("needs CAP_NET_RAW: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		mark, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK)
		unix.Close(fd)
		if err != nil || mark != Mark {
			t.Errorf("family %d: SO_MARK = %#x, %v; want %#x", family, mark, err, Mark)
		}
	}
	if n := len(HoldFilter()); n != 7 {
		t.Errorf("HoldFilter has %d instructions, want 7", n)
	}
}
