package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes IP packets to a pcap file (link type RAW), for Wireshark or
// tcpdump -r. It is not safe for concurrent use.
type Writer struct{ w *pcapgo.Writer }

// NewWriter writes the pcap file header to w and returns a Writer.
func NewWriter(w io.Writer) (*Writer, error) {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		return nil, fmt.Errorf("capture: pcap header: %w", err)
	}
	return &Writer{w: pw}, nil
}

// WritePacket writes the IP packet ip, seen at t.
func (w *Writer) WritePacket(t time.Time, ip []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(ip), Length: len(ip)}
	if err := w.w.WritePacket(ci, ip); err != nil {
		return fmt.Errorf("capture: pcap write: %w", err)
	}
	return nil
}

// packetSource is what pcapgo's pcap and pcapng readers have in common.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// ReadAll reads every TCP segment from a pcap or pcapng file (tcpdump's
// default link types: Ethernet, Linux cooked v1 and v2, raw IP, BSD
// loopback) and calls fn with each, in file order. Packets that are not
// TCP over IP are skipped. Packet.Outgoing is known only for Linux cooked
// captures ("tcpdump -i any").
func ReadAll(r io.Reader, fn func(Packet) error) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("capture: read pcap: %w", err)
	}
	var src packetSource
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		src, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		src, err = pcapgo.NewReader(br)
	}
	if err != nil {
		return fmt.Errorf("capture: read pcap: %w", err)
	}
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("capture: read pcap: %w", err)
		}
		p, ok := fromLink(src.LinkType(), data)
		if !ok {
			continue
		}
		p.Time = ci.Timestamp
		if err := fn(p); err != nil {
			return err
		}
	}
}

// fromLink strips the link-layer header of one captured frame and decodes
// the TCP segment behind it.
func fromLink(lt layers.LinkType, data []byte) (Packet, bool) {
	var (
		ip       []byte
		outgoing bool
	)
	switch lt {
	case layers.LinkTypeRaw, layers.LinkType(12), layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		ip = data
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return Packet{}, false
		}
		ip = data[14:]
		if len(data) >= 18 && data[12] == 0x81 && data[13] == 0x00 { // one VLAN tag
			ip = data[18:]
		}
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return Packet{}, false
		}
		ip, outgoing = data[16:], data[0] == 0 && data[1] == 4
	case layers.LinkTypeLinuxSLL2: // "tcpdump -i any" on recent systems
		if len(data) < 20 {
			return Packet{}, false
		}
		ip, outgoing = data[20:], data[10] == 4
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return Packet{}, false
		}
		ip = data[4:]
	default:
		return Packet{}, false
	}
	seg, err := Decode(ip)
	if err != nil {
		return Packet{}, false
	}
	return Packet{Segment: seg, Outgoing: outgoing, IP: ip}, true
}
