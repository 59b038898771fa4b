package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/bench/internal/tcpdump"
	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/sockopt"
	"github.com/synhold/synhold/listener/capture"
	"golang.org/x/sys/unix"
)

// floorRows measures this machine's floor for each count of ns: that many
// SYNs held by the hold filter on one listening socket, replayed back to
// back by hand on one locked thread (detach, then one sendto(2) each, as
// the library releases), rounds times, timed by tcpdump.
func floorRows(sn *sniffer, ns []int, rounds int) ([]FloorRow, error) {
	dir, err := os.MkdirTemp("", "synhold-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var rows []FloorRow
	for _, n := range ns {
		row := FloorRow{N: n, Rounds: rounds, Load: loadAvg()}
		var spans []time.Duration
		for r := range rounds {
			span, dropped, err := floorRound(sn, filepath.Join(dir, fmt.Sprintf("floor-%d-%d.pcap", n, r)), n)
			if err != nil {
				return rows, fmt.Errorf("floor of %d handshakes: %w", n, err)
			}
			spans, row.Dropped = append(spans, span), row.Dropped+dropped
		}
		row.Span = stats.Summarize(spans)
		row.SpanUS = row.Span.P50US
		row.PerHandshakeUS = stats.Round3(row.SpanUS / float64(n))
		progress("  floor, %4d SYNs replayed back to back: %s for all (p50 of %d), %s per handshake; load %s",
			n, stats.FmtUS(row.SpanUS), rounds, stats.FmtUS(row.PerHandshakeUS), row.Load)
		rows = append(rows, row)
	}
	return rows, nil
}

// floorRound holds n clients on one held socket, replays their SYNs back to
// back and returns tcpdump's last SYN-ACK minus the time just before the
// first replay.
func floorRound(sn *sniffer, pcap string, n int) (time.Duration, int, error) {
	h, err := openHeld(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0))
	if err != nil {
		return 0, 0, err
	}
	defer h.close()
	td, err := tcpdump.Start(pcap, fmt.Sprintf("tcp src port %d and tcp[13] & 18 == 18", h.addr.Port()))
	if err != nil {
		return 0, 0, err
	}
	span, err := floorReplay(sn, h, n)
	dropped, terr := td.Stop()
	if err = errors.Join(err, terr); err != nil {
		return 0, dropped, err
	}
	last, seen, err := lastSYNACK(pcap)
	if err == nil && seen != n {
		err = fmt.Errorf("tcpdump saw %d SYN-ACKs, want %d (%d dropped)", seen, n, dropped)
	}
	return last.Sub(span), dropped, err
}

// floorReplay dials n clients to h, waits for each SYN, replays them all
// and waits for every client to connect; it returns the time just before
// the first replay.
func floorReplay(sn *sniffer, h *heldSocket, n int) (time.Time, error) {
	clients := make([]*rawClient, 0, n)
	defer func() {
		for _, c := range clients {
			c.Close()
			sn.forget(c.Local)
		}
	}()
	for range n {
		c, err := dialStart(h.addr)
		if err != nil {
			return time.Time{}, err
		}
		clients = append(clients, c)
	}
	deadline := time.Now().Add(900 * time.Millisecond) // before the clients' first retransmission
	ips := make([][]byte, n)
	for i, c := range clients {
		f, err := sn.waitSYN(c.Local, deadline)
		if err != nil {
			return time.Time{}, err
		}
		ips[i] = slices.Clone(f.ip)
		if err := capture.FixChecksum(ips[i]); err != nil {
			return time.Time{}, err
		}
	}
	start, err := replayBackToBack(h, ips)
	if err != nil {
		return start, err
	}
	for _, c := range clients {
		if _, err := c.wait(time.Now().Add(3 * time.Second)); err != nil {
			return start, err
		}
	}
	return start, nil
}

// replayBackToBack detaches h's hold filter and replays every SYN of ips,
// one sendto(2) after another, on a locked thread; it returns the time
// just before the first.
func replayBackToBack(h *heldSocket, ips [][]byte) (time.Time, error) {
	type result struct {
		start time.Time
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var r result
		r.start, r.err = replayAll(h, ips)
		ch <- r
	}()
	r := <-ch
	return r.start, r.err
}

func replayAll(h *heldSocket, ips [][]byte) (time.Time, error) {
	rc, err := h.ln.SyscallConn()
	if err != nil {
		return time.Time{}, err
	}
	lo, err := loopback()
	if err != nil {
		return time.Time{}, err
	}
	to := replay.To(h.addr.Addr(), lo)
	if err := sockopt.DetachFilter(rc); err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	for _, ip := range ips {
		if err := unix.Sendto(h.raw, ip, 0, to); err != nil {
			return start, os.NewSyscallError("sendto", err)
		}
	}
	return start, nil
}

// lastSYNACK reads a pcap of SYN-ACKs and returns the last one's time and
// how many clients were answered (a SYN-ACK sent again counts once).
func lastSYNACK(file string) (time.Time, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return time.Time{}, 0, err
	}
	defer f.Close()
	var last time.Time
	seen := map[netip.AddrPort]bool{}
	err = capture.ReadAll(f, func(p capture.Packet) error {
		if p.IsSYNACK() && !seen[p.Dst] {
			seen[p.Dst] = true
			if p.Time.After(last) {
				last = p.Time
			}
		}
		return nil
	})
	return last, len(seen), err
}

// loadAvg is /proc/loadavg's three load averages, as uptime shows them.
func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
