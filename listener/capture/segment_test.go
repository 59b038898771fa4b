package capture

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// synPacket builds a SYN from src to dst with gopacket, checksums included.
func synPacket(t testing.TB, src, dst netip.AddrPort, seq uint32) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, SYN: true, Window: 65535}
	var ipl gopacket.SerializableLayer
	if src.Addr().Is4() {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		tcp.SetNetworkLayerForChecksum(ip)
		ipl = ip
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		tcp.SetNetworkLayerForChecksum(ip)
		ipl = ip
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ipl, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeAndFixChecksum(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"127.0.0.1:40000", "127.0.0.1:10036"},
		{"[::1]:40000", "[fd00::1]:443"},
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		pkt := synPacket(t, src, dst, 12345)
		seg, err := Decode(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if seg.Src != src || seg.Dst != dst || seg.Seq != 12345 || !seg.IsSYN() || seg.IsSYNACK() {
			t.Errorf("Decode = %v, want SYN %v > %v seq 12345", seg, src, dst)
		}
		want := append([]byte(nil), pkt...)
		// Loopback leaves a partial checksum: break it, and FixChecksum
		// must restore what gopacket computed.
		binary.BigEndian.PutUint16(pkt[len(pkt)-20+16:], 0xbeef)
		if err := FixChecksum(pkt); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pkt, want) {
			t.Errorf("%s: FixChecksum gave %x, want %x", tc.src, pkt, want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := synPacket(t, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), 1)
	udp := append([]byte(nil), good...)
	udp[9] = 17
	for name, b := range map[string][]byte{
		"empty":     nil,
		"version 5": {0x50, 0, 0, 0},
		"udp":       udp,
		"truncated": good[:30],
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
		if name != "udp" {
			if err := FixChecksum(append([]byte(nil), b...)); err == nil && len(b) < 40 {
				t.Errorf("%s: FixChecksum succeeded", name)
			}
		}
	}
}

func TestPcapRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123456789)
	srcs := []string{"127.0.0.1:5000", "[::1]:5001"}
	for i, s := range srcs {
		src := netip.MustParseAddrPort(s)
		dst := netip.AddrPortFrom(src.Addr(), 8081)
		if err := w.WritePacket(t0.Add(time.Duration(i)*time.Second), synPacket(t, src, dst, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []Packet
	if err := ReadAll(&buf, func(p Packet) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(srcs) {
		t.Fatalf("read %d packets, want %d", len(got), len(srcs))
	}
	for i, p := range got {
		if p.Src.String() != srcs[i] || !p.Time.Equal(t0.Add(time.Duration(i)*time.Second)) || p.Seq != uint32(i) {
			t.Errorf("packet %d = %v at %v, want from %s at +%ds", i, p.Segment, p.Time, srcs[i], i)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder and the checksum fixer:
// they must never panic, and what Decode accepts must be consistent.
func FuzzDecode(f *testing.F) {
	f.Add(synPacket(f, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), 7))
	f.Add(synPacket(f, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2"), 7))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := Decode(b)
		if err == nil {
			if !seg.Src.IsValid() || !seg.Dst.IsValid() {
				t.Fatalf("Decode accepted %x with invalid addresses %v", b, seg)
			}
			if seg.Src.Addr().Is4() != (b[0]>>4 == 4) {
				t.Fatalf("family of %v does not match IP version %d", seg, b[0]>>4)
			}
		}
		c := append([]byte(nil), b...)
		if FixChecksum(c) == nil {
			// A fixed checksum is final: fixing again changes nothing, and
			// the segment still decodes as before.
			d := append([]byte(nil), c...)
			if err := FixChecksum(d); err != nil || !bytes.Equal(c, d) {
				t.Fatalf("FixChecksum is not idempotent on %x: %v", b, err)
			}
			if seg2, err2 := Decode(c); (err == nil) != (err2 == nil) || err == nil && seg2 != seg {
				t.Fatalf("FixChecksum changed what %x decodes to: %v, %v -> %v, %v", b, seg, err, seg2, err2)
			}
		}
		_, _ = fromLink(layers.LinkTypeEthernet, b)
		_, _ = fromLink(layers.LinkTypeLinuxSLL, b)
		_, _ = fromLink(layers.LinkTypeLinuxSLL2, b)
	})
}

// TestReadAllLinkTypes reads one SYN framed as each link type tcpdump writes,
// in pcap and pcapng, and checks the packet and its direction come back.
func TestReadAllLinkTypes(t *testing.T) {
	src := netip.MustParseAddrPort("127.0.0.1:5000")
	ip := synPacket(t, src, netip.MustParseAddrPort("127.0.0.1:8081"), 42)
	sll := func(pktType byte) []byte { // LINKTYPE_LINUX_SLL: 16 bytes
		h := make([]byte, 16)
		h[1] = pktType
		binary.BigEndian.PutUint16(h[14:], 0x0800)
		return append(h, ip...)
	}
	sll2 := func(pktType byte) []byte { // LINKTYPE_LINUX_SLL2: 20 bytes
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], 0x0800)
		binary.BigEndian.PutUint32(h[4:], 1) // ifindex
		h[10] = pktType
		return append(h, ip...)
	}
	eth := append([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00}, ip...)
	for _, tc := range []struct {
		name     string
		lt       layers.LinkType
		frame    []byte
		outgoing bool
	}{
		{"raw", layers.LinkTypeRaw, ip, false},
		{"ethernet", layers.LinkTypeEthernet, eth, false},
		{"null", layers.LinkTypeNull, append([]byte{2, 0, 0, 0}, ip...), false},
		{"cooked v1 incoming", layers.LinkTypeLinuxSLL, sll(0), false},
		{"cooked v1 outgoing", layers.LinkTypeLinuxSLL, sll(4), true},
		{"cooked v2 incoming", layers.LinkTypeLinuxSLL2, sll2(0), false},
		{"cooked v2 outgoing", layers.LinkTypeLinuxSLL2, sll2(4), true},
	} {
		for _, ng := range []bool{false, true} {
			name := tc.name + map[bool]string{false: " pcap", true: " pcapng"}[ng]
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 5), CaptureLength: len(tc.frame), Length: len(tc.frame)}
				if ng {
					w, err := pcapgo.NewNgWriter(&buf, tc.lt)
					if err != nil {
						t.Fatal(err)
					}
					if err := w.WritePacket(ci, tc.frame); err != nil {
						t.Fatal(err)
					}
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
				} else {
					w := pcapgo.NewWriterNanos(&buf)
					if err := w.WriteFileHeader(65535, tc.lt); err != nil {
						t.Fatal(err)
					}
					if err := w.WritePacket(ci, tc.frame); err != nil {
						t.Fatal(err)
					}
				}
				var got []Packet
				if err := ReadAll(&buf, func(p Packet) error { got = append(got, p); return nil }); err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 {
					t.Fatalf("read %d packets, want 1", len(got))
				}
				p := got[0]
				if p.Src != src || p.Seq != 42 || !p.Time.Equal(ci.Timestamp) || p.Outgoing != tc.outgoing {
					t.Errorf("got %v at %v outgoing=%v, want from %v seq 42 at %v outgoing=%v", p.Segment, p.Time, p.Outgoing, src, ci.Timestamp, tc.outgoing)
				}
			})
		}
	}
}
