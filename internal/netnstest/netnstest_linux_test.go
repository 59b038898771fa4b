package netnstest

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNewPairCarriesAtOnce: the first packet across a new pair is not left
// to address resolution. Each namespace knows the other's addresses
// (permanent neighbour entries), and a connect from the client to a port
// nobody listens on is refused at once, for both families, in each of a
// few fresh pairs (a first SYN stuck behind a dropped ARP request waited
// 1 s).
func TestNewPairCarriesAtOnce(t *testing.T) {
	for i := range 3 {
		p := New(t)
		for _, ns := range []struct{ self, peer NS }{{p.Server, p.Client}, {p.Client, p.Server}} {
			out, err := exec.Command("ip", "-n", ns.self.Name, "neigh", "show").CombinedOutput()
			if err != nil {
				t.Fatalf("ip neigh show: %v: %s", err, out)
			}
			for _, a := range []netip.Addr{ns.peer.Addr4, ns.peer.Addr6} {
				if !hasPermanent(string(out), a) {
					t.Errorf("pair %d: %s has no permanent neighbour entry for %s:\n%s", i, ns.self.Name, a, out)
				}
			}
		}
		for _, a := range []netip.Addr{p.Server.Addr4, p.Server.Addr6} {
			var took time.Duration
			err := p.Client.Do(func() error {
				start := time.Now()
				c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, 9).String(), 3*time.Second)
				took = time.Since(start)
				if err == nil {
					c.Close()
				}
				return err
			})
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("pair %d: dial %s, port 9: %v, want connection refused", i, a, err)
			}
			// Loose for a loaded machine; ARP's retry is 1 s.
			if took > 500*time.Millisecond {
				t.Errorf("pair %d: refused after %v across a new pair, want at once (no address resolution)", i, took)
			}
		}
	}
}

func hasPermanent(neigh string, a netip.Addr) bool {
	for line := range strings.Lines(neigh) {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == a.String() && strings.Contains(line, "PERMANENT") {
			return true
		}
	}
	return false
}
