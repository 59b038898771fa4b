// Package capture sees TCP handshake segments as the kernel receives and sends
// them: an AF_PACKET socket with a classic BPF filter that keeps SYNs and
// SYN-ACKs, kernel receive timestamps, decoding with gopacket's layers, and
// pcap files for Wireshark.
//
// The listener package uses it to see SYNs that a held listener drops, and
// to replay them; the reconnect server uses it to time connection attempts
// from their SYNs rather than from accept(2); backoff-check reads the pcap
// files it writes, or tcpdump's, with ReadAll.
//
// # Systems and privileges
//
// A Socket is Linux's, and needs CAP_NET_RAW (root, or setcap cap_net_raw+ep
// on the binary): without it Open fails with an error that satisfies
// errors.Is(err, os.ErrPermission); on other systems every Socket call fails
// with an error wrapping errors.ErrUnsupported. Decode, FixChecksum, ReadAll
// and Writer work on bytes and files, everywhere and without privilege.
//
// ExampleOpen captures the SYNs to one port into a pcap file; ExampleReadAll
// reads one. docs/design.md says how the listener uses the capture.
package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Flags are the TCP header's flag bits.
type Flags uint8

// The TCP flags this package looks at.
const (
	FIN Flags = 0x01
	SYN Flags = 0x02
	RST Flags = 0x04
	PSH Flags = 0x08
	ACK Flags = 0x10
)

// Has reports whether every flag in g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String returns the flags in tcpdump's style, "SA" for SYN+ACK.
func (f Flags) String() string {
	var b strings.Builder
	for _, x := range []struct {
		f Flags
		c byte
	}{{SYN, 'S'}, {FIN, 'F'}, {RST, 'R'}, {PSH, 'P'}, {ACK, 'A'}} {
		if f.Has(x.f) {
			b.WriteByte(x.c)
		}
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}

// Segment is the part of an IP packet carrying TCP that a handshake is made of.
type Segment struct {
	// Src and Dst are the addresses and ports, IPv4 ones as IPv4 (not
	// IPv4-mapped).
	Src, Dst netip.AddrPort
	// Seq and Ack are the sequence and acknowledgement numbers: a SYN's Seq
	// is its connection's initial sequence number (ISN).
	Seq, Ack uint32
	Flags    Flags
}

// IsSYN reports whether s opens a connection: SYN set, ACK clear.
func (s Segment) IsSYN() bool { return s.Flags.Has(SYN) && !s.Flags.Has(ACK) }

// IsSYNACK reports whether s answers a SYN.
func (s Segment) IsSYNACK() bool { return s.Flags.Has(SYN | ACK) }

// String returns s in the style of a tcpdump line:
// "127.0.0.1:40000 > 127.0.0.1:8080 [S] seq 1000".
func (s Segment) String() string {
	return fmt.Sprintf("%v > %v [%v] seq %d", s.Src, s.Dst, s.Flags, s.Seq)
}

// ErrNotTCP is returned by Decode for a packet that is not an unfragmented
// IPv4 or IPv6 packet carrying a whole TCP header.
var ErrNotTCP = errors.New("capture: not a TCP segment")

// Decode decodes the IP packet b (starting at its IPv4 or IPv6 header) into a
// Segment. It does not verify checksums: on loopback the kernel leaves them
// partial.
func Decode(b []byte) (Segment, error) {
	if len(b) == 0 {
		return Segment{}, fmt.Errorf("%w: empty packet", ErrNotTCP)
	}
	var (
		src, dst netip.Addr
		payload  []byte
	)
	switch b[0] >> 4 {
	case 4:
		var ip layers.IPv4
		if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			return Segment{}, fmt.Errorf("%w: %v", ErrNotTCP, err)
		}
		if ip.Protocol != layers.IPProtocolTCP || ip.FragOffset != 0 || ip.Flags&layers.IPv4MoreFragments != 0 {
			return Segment{}, fmt.Errorf("%w: IPv4 protocol %v", ErrNotTCP, ip.Protocol)
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		payload = ip.Payload
	case 6:
		var ip layers.IPv6
		if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			return Segment{}, fmt.Errorf("%w: %v", ErrNotTCP, err)
		}
		if ip.NextHeader != layers.IPProtocolTCP {
			return Segment{}, fmt.Errorf("%w: IPv6 next header %v", ErrNotTCP, ip.NextHeader)
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		payload = ip.Payload
	default:
		return Segment{}, fmt.Errorf("%w: IP version %d", ErrNotTCP, b[0]>>4)
	}
	var tcp layers.TCP
	if err := tcp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
		return Segment{}, fmt.Errorf("%w: %v", ErrNotTCP, err)
	}
	return Segment{
		Src:   netip.AddrPortFrom(src, uint16(tcp.SrcPort)),
		Dst:   netip.AddrPortFrom(dst, uint16(tcp.DstPort)),
		Seq:   tcp.Seq,
		Ack:   tcp.Ack,
		Flags: Flags(payload[13]),
	}, nil
}

// FixChecksum recomputes, in place, the TCP checksum of the IP packet b. A
// segment captured on loopback carries only the partial (pseudo-header)
// checksum that offload would have completed; sent back into the stack as
// it is, the kernel drops it (TcpInCsumErrors).
func FixChecksum(b []byte) error {
	var sum uint32
	var tcp []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || total < ihl+20 || total > len(b) || b[9] != 6 {
			return fmt.Errorf("%w: bad IPv4 header", ErrNotTCP)
		}
		tcp = b[ihl:total]
		sum = sumBytes(b[12:20]) + 6 + uint32(len(tcp))
	case len(b) >= 40 && b[0]>>4 == 6:
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		if b[6] != 6 || plen < 20 || 40+plen > len(b) {
			return fmt.Errorf("%w: bad IPv6 header", ErrNotTCP)
		}
		tcp = b[40 : 40+plen]
		sum = sumBytes(b[8:40]) + 6 + uint32(len(tcp))
	default:
		return fmt.Errorf("%w: not IPv4 or IPv6", ErrNotTCP)
	}
	tcp[16], tcp[17] = 0, 0
	sum += sumBytes(tcp)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(tcp[16:18], ^uint16(sum))
	return nil
}

// sumBytes adds b as big-endian 16-bit words, padding an odd tail with zero.
func sumBytes(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}
