package listener

import (
	"net/netip"
	"sort"
	"time"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/internal/releaseclock"
)

// maxFlows bounds the handshakes a listener remembers; the oldest are
// forgotten first.
const maxFlows = 4096

type flowKey struct {
	client netip.AddrPort
	isn    uint32
}

// flow is one connection's handshake, as the capture saw it.
type flow struct {
	hs       Handshake
	ip       []byte // the latest SYN, checksum fixed, ready to replay; in ipBuf where it fits
	ipBuf    [maxSYN]byte
	dst      netip.Addr
	ifindex  int
	sys      flowSys // what the platform keeps to send it
	job      *releaseclock.Job
	released bool
	refuse   bool      // its Verdict says Refuse
	started  time.Time // the start of the timed release that replayed it, or zero
}

// maxSYN is the longest SYN a flow keeps in its own array: an IPv6 header
// and a TCP header with the most options (40 + 60 bytes).
const maxSYN = 100

// Handshake returns what the listener saw of the latest handshake from
// client. If it has no SYN-ACK yet, Handshake first lets the capture hand
// over what it holds (waiting at most 50 ms), so that a connection just
// accepted has its SYN-ACK. It reports false for a client the listener saw
// no SYN from (strategies other than Replay see none).
func (h *Held) Handshake(client netip.AddrPort) (Handshake, bool) {
	hs, ok := h.handshake(client)
	if !ok || hs.SYNACK.IsZero() {
		h.syncCapture()
		hs, ok = h.handshake(client)
	}
	return hs, ok
}

func (h *Held) handshake(client netip.AddrPort) (Handshake, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.byClient[clientKey(client)]
	if !ok {
		return Handshake{}, false
	}
	return f.copy(), true
}

// Handshakes returns every handshake the listener remembers (the latest
// 4096 connections), in the order of their first SYN, after letting the
// capture hand over what it holds (waiting at most 50 ms).
func (h *Held) Handshakes() []Handshake {
	h.syncCapture()
	h.mu.Lock()
	hs := make([]Handshake, 0, len(h.flows))
	for _, f := range h.flows {
		hs = append(hs, f.copy())
	}
	h.mu.Unlock()
	sort.Slice(hs, func(i, j int) bool { return hs[i].SYNs[0].Before(hs[j].SYNs[0]) })
	return hs
}

// clientKey is a client address as the capture decodes it: no zone, and an
// IPv4-mapped address as IPv4.
func clientKey(a netip.AddrPort) netip.AddrPort { return netaddr.Canonical(a) }

func (f *flow) copy() Handshake {
	hs := f.hs
	hs.SYNs = append([]time.Time(nil), f.hs.SYNs...)
	return hs
}

// remember adds f under k, forgetting the oldest flow past maxFlows, and
// its clock job with it. h.mu is held.
func (h *Held) remember(k flowKey, f *flow) {
	if len(h.order) >= maxFlows {
		old := h.order[0]
		h.order = h.order[1:]
		if of := h.flows[old]; of != nil {
			if of.job != nil {
				h.clk.Cancel(of.job)
				of.job = nil
			}
			if h.byClient[old.client] == of {
				delete(h.byClient, old.client)
			}
		}
		delete(h.flows, old)
	}
	h.flows[k] = f
	h.order = append(h.order, k)
	h.byClient[k.client] = f
}
