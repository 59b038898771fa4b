package listener

import (
	"errors"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synhold/synhold/listener/capture"
)

// The garbage of the hot paths, per captured SYN, per release and per
// event delivered: go test -run '^$' -bench Path -benchmem ./listener

// BenchmarkPathEvent is one event queued and handed to OnEvent, in bursts
// of 64 that OnEvent drains (as a burst of SYN-ACKs is).
func BenchmarkPathEvent(b *testing.B) {
	var got atomic.Int64
	delivered := make(chan struct{}, 1)
	q := newEventQueue(func(Event) {
		if got.Add(1)%64 == 0 {
			delivered <- struct{}{}
		}
	})
	e := Event{Kind: SYNACKSent, Time: time.Now()}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		q.push(e)
		if n++; n%64 == 0 {
			<-delivered
		}
	}
	q.close()
	if got.Load() != int64(b.N) {
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
}

// benchListener is a held listener of strategy Replay, released in an hour,
// or a skip without CAP_NET_RAW.
func benchListener(b *testing.B, cfg Config) *Held {
	b.Helper()
	cfg.Strategy = Replay
	if cfg.At.IsZero() {
		cfg.At = time.Now().Add(time.Hour)
	}
	h, err := Listen("tcp4", "127.0.0.1:0", cfg)
	if errors.Is(err, os.ErrPermission) {
		b.Skipf("needs CAP_NET_RAW: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

// synPacket is a captured SYN from client to h, as the capture hands it over.
func synPacket(h *Held, client netip.AddrPort, isn uint32) capture.Packet {
	ip := warmSYN(client, h.local)
	seg, err := capture.Decode(ip)
	if err != nil {
		panic(err)
	}
	seg.Seq = isn
	return capture.Packet{Segment: seg, Time: time.Now(), Ifindex: loopbackIfindex, Loopback: true, IP: ip}
}

// BenchmarkPathSYN is one captured SYN through the flow table to its event
// (held: no verdict, no release), OnEvent counting.
func BenchmarkPathSYN(b *testing.B) {
	var got atomic.Int64
	h := benchListener(b, Config{OnEvent: func(Event) { got.Add(1) }})
	ps := make([]capture.Packet, 1024)
	for i := range ps {
		ps[i] = synPacket(h, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(20000+i)), uint32(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := ps[i%len(ps)]
		p.Seq += uint32(i / len(ps) << 16) // a new flow each time
		h.onSYN(p)
		i++
	}
}

// BenchmarkPathSYNACK is one captured SYN-ACK of a held flow to its event.
func BenchmarkPathSYNACK(b *testing.B) {
	h := benchListener(b, Config{OnEvent: func(Event) {}})
	client := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 20000)
	syn := synPacket(h, client, 7)
	h.onSYN(syn)
	sa := syn
	sa.Src, sa.Dst, sa.Ack, sa.Flags = syn.Dst, syn.Src, 8, capture.SYN|capture.ACK
	b.ReportAllocs()
	for b.Loop() {
		h.mu.Lock()
		h.byClient[clientKey(client)].hs.SYNACK = time.Time{}
		h.mu.Unlock()
		h.onSYNACK(sa)
	}
}

// BenchmarkPathRelease is one flow's release from its clock job: the
// replayed SYN sent into the stack (to a port where nothing listens: the
// kernel answers with a RST) and its Released event.
func BenchmarkPathRelease(b *testing.B) {
	h := benchListener(b, Config{OnEvent: func(Event) {}, Decide: func(SYN) Verdict { return Verdict{} }})
	client := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 20000)
	syn := synPacket(h, client, 7)
	h.onSYN(syn)
	k := flowKey{clientKey(client), 7}
	want := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h.mu.Lock()
		h.flows[k].released = false
		h.mu.Unlock()
		h.releaseFlow(k, want)
	}
}

// BenchmarkPathWarm is one warm-up of both families' release path.
func BenchmarkPathWarm(b *testing.B) {
	h := benchListener(b, Config{})
	e := h.sys.eng
	b.ReportAllocs()
	for b.Loop() {
		e.lastWarm4.Store(0)
		e.lastWarm6.Store(0)
		e.warm(true, true)
	}
}
