package listener

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// releaseFlow settles one held SYN at its own instant. It runs on the clock.
func (h *Held) releaseFlow(k flowKey, want time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.flows[k]
	if f == nil || f.released || h.isClosed() {
		return
	}
	f.job = nil
	h.startedAt = time.Now()
	h.settle(f, want)
	h.startedAt = time.Time{}
}

// lead is how long before its instant the listener's release starts; h.mu
// is held.
func (h *Held) lead() time.Duration {
	if h.sys.eng == nil {
		return 0
	}
	return h.sys.eng.leadFor(h.families())
}

// families says which address families the listener takes SYNs of.
func (h *Held) families() (v4, v6 bool) {
	a := h.local.Addr()
	return a.Is4() || h.dual, !a.Is4()
}

// preparer is the prepare of the listener's release: prepareRelease with
// WarmRelease, else none (the clock then wakes Spin before the release, not
// PrepareAhead earlier still).
func (h *Held) preparer() func() {
	if h.sys.eng == nil || !h.tune.WarmRelease {
		return nil
	}
	return h.prepareRelease
}

// prepareRelease runs when the clock wakes for the listener's release,
// shortly before it, and again Rewarm (100 µs) before it: it touches what
// the release will touch (the held SYNs) and warms the kernel's path of the
// replay. Measured as used (the server binary, pairs 100-300 ms apart, the
// clock's own trace): a warm-up takes 100-250 µs; the kernel's path from
// the replayed SYN to the SYN-ACK took 45-175 µs unwarmed, 22-32 µs right
// after a warm-up, and 35-130 µs again ~600 µs after one; with a second
// warm-up 100 µs before the start, 28-55 µs.
func (h *Held) prepareRelease() {
	h.mu.Lock()
	var v4, v6 bool
	for _, f := range h.flows {
		if !f.released {
			touch(f.ip)
			v4, v6 = v4 || f.dst.Is4(), v6 || !f.dst.Is4()
		}
	}
	h.mu.Unlock()
	if !v4 && !v6 { // nothing held yet: warm the listener's families
		v4, v6 = h.families()
	}
	h.sys.eng.warm(v4, v6)
}

// prepareFlow is prepareRelease for one flow's own instant.
func (h *Held) prepareFlow(k flowKey) {
	h.mu.Lock()
	f := h.flows[k]
	var dst netip.Addr
	if f != nil {
		touch(f.ip)
		dst = f.dst
	}
	h.mu.Unlock()
	if f == nil {
		return
	}
	h.sys.eng.warm(dst.Is4(), !dst.Is4())
}

// touchSink keeps touch's reads from being optimised away.
var touchSink atomic.Uint32

// touch reads b, so that the release finds it in the cache.
func touch(b []byte) {
	var x byte
	for _, c := range b {
		x ^= c
	}
	touchSink.Add(uint32(x))
}

// The lead of an early start: how much before its instant a release begins,
// so that the SYN-ACK leaves at the instant rather than the kernel's path
// after it. It is learned per network namespace and family from the
// releases' own latency, from the start of the release to the SYN-ACK as the
// capture records it: once it has leadMinSamples, the smallest of the last
// leadSamples, less leadMargin, at most maxLead.
const (
	leadSamples    = 64
	leadMinSamples = 8
	leadMargin     = 15 * time.Microsecond
	maxLead        = 150 * time.Microsecond
)

// leadLearner keeps the latest latencies of one family's releases.
type leadLearner struct {
	mu      sync.Mutex
	samples [leadSamples]time.Duration
	n, next int
}

// learn adds one release's latency, start of the release to its SYN-ACK.
func (l *leadLearner) learn(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples[l.next] = d
	l.next = (l.next + 1) % leadSamples
	if l.n < leadSamples {
		l.n++
	}
}

// lead is the smallest latency kept, less leadMargin, within [0, maxLead];
// 0 before leadMinSamples.
func (l *leadLearner) lead() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < leadMinSamples {
		return 0
	}
	m := l.samples[0]
	for _, d := range l.samples[1:l.n] {
		m = min(m, d)
	}
	return max(0, min(m-leadMargin, maxLead))
}

// leadFor is the early start's lead for a release to addresses of the
// families asked for: the smaller of theirs. 0 with EarlyStart off.
func (e *engine) leadFor(v4, v6 bool) time.Duration {
	if !e.cfg.EarlyStart {
		return 0
	}
	l := maxLead
	if v4 {
		l = min(l, e.lead4.lead())
	}
	if v6 {
		l = min(l, e.lead6.lead())
	}
	return l
}

// learnLead adds the latency of one release to dst, from its start to its
// SYN-ACK.
func (e *engine) learnLead(dst netip.Addr, d time.Duration) {
	if dst.Is4() || dst.Is4In6() {
		e.lead4.learn(d)
	} else {
		e.lead6.learn(d)
	}
}

// flowLead is the early start's lead for one flow to dst; h.mu is held.
func (h *Held) flowLead(dst netip.Addr) time.Duration {
	if h.sys.eng == nil {
		return 0
	}
	return h.sys.eng.leadFor(dst.Is4(), !dst.Is4())
}
