package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/listener/capture"
)

// tcpdump is the outside observer of the "as it is used" scenario: a
// tcpdump process recording the SYNs and SYN-ACKs on lo to a pcap file with
// nanosecond timestamps. On lo it records each packet once, as it arrives
// (libpcap leaves out the outgoing copy), which is when the receiving
// socket sees it.
type tcpdump struct {
	*child
	file string
}

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
func startTCPDump(file string) (*tcpdump, error) {
	filter, err := tcpdumpFilter()
	if err != nil {
		return nil, err
	}
	return startTCPDumpFilter(file, filter)
}

// startTCPDumpFilter starts tcpdump on lo writing the packets that filter
// keeps to file, and returns once it has said it is listening.
func startTCPDumpFilter(file, filter string) (*tcpdump, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("the rows \"as it is used\" need tcpdump as their observer (apt-get install tcpdump), "+
			"or leave them out with -only: %w", err)
	}
	// --immediate-mode: deliver each packet at once rather than by ring
	// block, so that none is still in the ring when tcpdump is stopped;
	// -B 64 MiB: with 4 busy processes tcpdump fell behind other traffic on
	// lo and the kernel dropped hundreds of packets from a 16 MiB buffer;
	// -s 160: the headers alone (link 14, IPv6 40, TCP with options 60
	// bytes); in immediate mode libpcap's ring has a slot of the snapshot
	// length per packet, so with the default 256 KiB the 64 MiB held only
	// about 256 packets, and 300 handshakes at once lost hundreds; -Z
	// root: do not drop privileges (the file is in a root-only directory).
	cmd := exec.Command(path, "-i", "lo", "-w", file, "--time-stamp-precision=nano", "--immediate-mode", "-U",
		"-B", "65536", "-s", "160", "-Z", "root", filter)
	c, err := startChild(cmd, 10*time.Second, func(line []byte) bool { return bytes.Contains(line, []byte("listening on")) })
	if err != nil {
		return nil, err
	}
	return &tcpdump{c, file}, nil
}

// droppedRE is tcpdump's closing count of packets the kernel dropped.
var droppedRE = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// stop waits until tcpdump's file stops growing (it has written what the
// kernel delivered), stops it (SIGINT: it then writes what it still holds
// and its counts) and returns how many packets the kernel dropped before
// tcpdump read them.
func (t *tcpdump) stop() (dropped int, err error) {
	settled(t.file, 100*time.Millisecond, 5*time.Second)
	err = t.child.stop(os.Interrupt, 10*time.Second)
	m := droppedRE.FindSubmatch(t.output())
	if m == nil {
		return 0, errors.Join(err, fmt.Errorf("tcpdump gave no counts: %s", t.tail(4)))
	}
	dropped, _ = strconv.Atoi(string(m[1]))
	return dropped, err
}

// settled waits until file's size has not changed for quiet, or limit
// passes: tcpdump writes each packet as it reads it (--immediate-mode, -U),
// so a file that stopped growing holds everything the kernel delivered.
func settled(file string, quiet, limit time.Duration) {
	const poll = 10 * time.Millisecond
	last, same := int64(-1), time.Duration(0)
	for end := time.Now().Add(limit); time.Now().Before(end) && same < quiet; time.Sleep(poll) {
		size := int64(-1)
		if fi, err := os.Stat(file); err == nil {
			size = fi.Size()
		}
		if size == last {
			same += poll
		} else {
			last, same = size, 0
		}
	}
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
	var best *observed
	for _, o := range conns {
		if !o.synack.IsZero() && (best == nil || o.synack.Sub(t).Abs() < best.synack.Sub(t).Abs()) {
			best = o
		}
	}
	return best
}
