//go:build unix

package netaddr

import (
	"net/netip"
	"testing"
)

func TestCanonicalAndSockaddrRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, canon string }{
		{"127.0.0.1:80", "127.0.0.1:80"},
		{"[::ffff:127.0.0.1]:443", "127.0.0.1:443"},
		{"[fe80::1%eth0]:22", "[fe80::1]:22"},
		{"[::1]:0", "[::1]:0"},
	} {
		in := netip.MustParseAddrPort(tc.in)
		got := Canonical(in)
		if got.String() != tc.canon {
			t.Errorf("Canonical(%s) = %s, want %s", in, got, tc.canon)
		}
		sa := Sockaddr(got)
		if p := Port(sa); p != got.Port() {
			t.Errorf("Port(Sockaddr(%s)) = %d", got, p)
		}
		if back := FromSockaddr(sa); back != got {
			t.Errorf("FromSockaddr(Sockaddr(%s)) = %s", got, back)
		}
	}
	if p := Port(nil); p != 0 {
		t.Errorf("Port(nil) = %d, want 0", p)
	}
	if a := FromSockaddr(nil); a.IsValid() {
		t.Errorf("FromSockaddr(nil) = %s, want invalid", a)
	}
}
