package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/synhold/synhold/bench/internal/tcpdump"
	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/listener/capture"
)

// tcpdumpFilter keeps the segments with SYN set (SYNs and SYN-ACKs) whose
// ports are in the ephemeral range, where every pair, control connection
// and client port lies. libpcap cannot index into the TCP header of an
// IPv6 packet (tcp[13]), so IPv6 looks at it directly, behind a 40-byte
// header with no extension (as the kernel sends on loopback).
func tcpdumpFilter() (string, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return "", fmt.Errorf("ip_local_port_range %q: want two ports", b)
	}
	return fmt.Sprintf("tcp portrange %s-%s and ((ip and tcp[13] & 2 != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 2 != 0))",
		f[0], f[1]), nil
}

// startTCPDump starts tcpdump on lo writing the SYNs and SYN-ACKs of the
// ephemeral ports to file, and returns once it has said it is listening.
func startTCPDump(file string) (*tcpdump.Dump, error) {
	filter, err := tcpdumpFilter()
	if err != nil {
		return nil, err
	}
	return tcpdump.Start(file, filter)
}

// observed is what the observer saw of one connection, by client address.
type observed struct {
	isn    uint32
	syn    time.Time // the first SYN
	last   time.Time // the last SYN (a replay, or the client's retransmission)
	syns   int
	synack time.Time // the first SYN-ACK answering it
}

// readObserved reads a pcap file into connections by client address, each
// address's in the order they began: over a run, a client port is used
// again.
func readObserved(file string) (map[netip.AddrPort][]*observed, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	flows := make(map[netip.AddrPort][]*observed)
	last := func(c netip.AddrPort) *observed {
		if cs := flows[c]; len(cs) > 0 {
			return cs[len(cs)-1]
		}
		return nil
	}
	err = capture.ReadAll(f, func(p capture.Packet) error {
		switch {
		case p.IsSYN():
			c := netaddr.Canonical(p.Src)
			o := last(c)
			if o == nil || o.isn != p.Seq {
				o = &observed{isn: p.Seq, syn: p.Time}
				flows[c] = append(flows[c], o)
			}
			o.syns++
			o.last = p.Time
		case p.IsSYNACK():
			if o := last(netaddr.Canonical(p.Dst)); o != nil && p.Ack == o.isn+1 && o.synack.IsZero() {
				o.synack = p.Time
			}
		}
		return nil
	})
	return flows, err
}

// nearest returns the connection of conns answered by a SYN-ACK closest to
// t, or nil if none was.
func nearest(conns []*observed, t time.Time) *observed {
	return closest(conns, t, func(o *observed) time.Time { return o.synack })
}
