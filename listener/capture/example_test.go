package capture_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/synhold/synhold/listener/capture"
)

// A SYN from 127.0.0.1:40000 to 127.0.0.1:8080, initial sequence number
// 1000: an IPv4 header and a TCP header, as ReadPacket's Packet.IP holds it.
var synPacket, _ = hex.DecodeString("450000280000400040063cce7f0000017f000001" +
	"9c401f90000003e8000000005002ffd700000000")

// Capture the handshakes of one local port for 10 s (needs CAP_NET_RAW) and
// write them to a pcap file that Wireshark, tcpdump -r or backoff-check
// reads.
func ExampleOpen() {
	s, err := capture.Open(capture.Config{})
	if errors.Is(err, os.ErrPermission) {
		log.Fatal("run as root or setcap cap_net_raw+ep: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.SetPorts([]uint16{8080}); err != nil { // the kernel drops the rest
		log.Fatal(err)
	}
	f, err := os.Create("syns.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(f)
	if err != nil {
		log.Fatal(err)
	}
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		p, err := s.ReadPacket()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		if p.Loopback && p.Outgoing {
			continue // on loopback every packet is seen twice: keep the copy received
		}
		fmt.Println(p.Time.Format(time.RFC3339Nano), p.Segment)
		if err := w.WritePacket(p.Time, p.IP); err != nil {
			log.Fatal(err)
		}
	}
}

func ExampleDecode() {
	seg, err := capture.Decode(synPacket)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(seg)
	fmt.Println("SYN:", seg.IsSYN(), "ISN:", seg.Seq)
	_, err = capture.Decode([]byte{0x60}) // a truncated IPv6 header
	fmt.Println(errors.Is(err, capture.ErrNotTCP))
	// Output:
	// 127.0.0.1:40000 > 127.0.0.1:8080 [S] seq 1000
	// SYN: true ISN: 1000
	// true
}

// ReadAll reads a pcap file, such as one a Writer wrote or tcpdump's.
func ExampleReadAll() {
	var file bytes.Buffer
	w, err := capture.NewWriter(&file)
	if err != nil {
		log.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if err := w.WritePacket(at, synPacket); err != nil {
		log.Fatal(err)
	}
	err = capture.ReadAll(&file, func(p capture.Packet) error {
		fmt.Println(p.Time.UTC().Format(time.RFC3339Nano), p.Segment)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2026-12-01T12:00:00Z 127.0.0.1:40000 > 127.0.0.1:8080 [S] seq 1000
}
