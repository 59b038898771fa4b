package testenv

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// SYNSentTo reports whether a TCP socket of this host's network namespace is
// in SYN_SENT to the address to, of either family: a client whose SYN went
// out and is not answered, as a held handshake's client is. It reads
// /proc/net/tcp or /proc/net/tcp6 (the remote address's field, state 02);
// without it the test skips as a missing feature. Unlike [SYNSent], it
// matches the address as well as the port, and IPv6.
func SYNSentTo(t testing.TB, to netip.AddrPort) bool {
	t.Helper()
	table, addr := "/proc/net/tcp", to.Addr().Unmap()
	if addr.Is6() {
		table = "/proc/net/tcp6"
	}
	// The kernel prints each 32-bit word of the address as it lies in
	// memory, read as a number of the host's byte order.
	var want strings.Builder
	raw := addr.AsSlice()
	for i := 0; i < len(raw); i += 4 {
		fmt.Fprintf(&want, "%08X", binary.NativeEndian.Uint32(raw[i:]))
	}
	fmt.Fprintf(&want, ":%04X", to.Port())
	return synSentIn(t, table, func(remote string) bool { return remote == want.String() })
}

// synSentIn reports whether a socket in table (/proc/net/tcp or tcp6) is
// in SYN_SENT (state 02) to a remote address field match accepts; without
// table the test skips as a missing feature.
func synSentIn(t testing.TB, table string, match func(remote string) bool) bool {
	t.Helper()
	b, err := os.ReadFile(table)
	if err != nil {
		SkipWithoutFeature(t, table+" (Linux's socket table)", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[3] == "02" && match(f[2]) {
			return true
		}
	}
	return false
}
