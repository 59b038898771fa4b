package replay

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/synhold/synhold/listener/capture"
)

func TestRSTIsARefusal(t *testing.T) {
	for _, tc := range []struct{ local, client string }{
		{"127.0.0.1:8080", "127.0.0.1:40000"},
		{"[::1]:8080", "[::1]:40000"},
	} {
		local, client := netip.MustParseAddrPort(tc.local), netip.MustParseAddrPort(tc.client)
		b := RST(local, client, 0xfffffffe)
		seg, err := capture.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if seg.Src != local || seg.Dst != client || seg.Flags != capture.RST|capture.ACK || seg.Ack != 0xffffffff {
			t.Errorf("%s: RST decodes as %v ack %d", tc.local, seg, seg.Ack)
		}
		fixed := bytes.Clone(b)
		if err := capture.FixChecksum(fixed); err != nil || !bytes.Equal(fixed, b) {
			t.Errorf("%s: TCP checksum %x, want %x", tc.local, b[len(b)-4:len(b)-2], fixed[len(fixed)-4:len(fixed)-2])
		}
	}
}
