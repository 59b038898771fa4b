package proxy

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// The handshake toxics. They act on the TCP handshake, before a connection
// exists, so their Pipe passes data through untouched; the proxy reads them
// from the toxic chain to decide each SYN's fate (see plan). Attributes are
// in milliseconds, like toxiproxy's.
const (
	typeDelay  = "handshake_delay"
	typeHold   = "handshake_hold"
	typeRefuse = "handshake_refuse"
)

// HandshakeDelay is the toxic handshake_delay: it completes each handshake
// Delay ± Jitter milliseconds after the connection's first SYN arrived, so
// that the client's connect returns then. Its fields are the toxic's
// attributes ({"delay": 200, "jitter": 10}). A program adds it through the
// API by its name, as any toxic; the three handshake toxics' types are
// exported for this page to document their attributes.
type HandshakeDelay struct {
	Delay  int64 `json:"delay"`
	Jitter int64 `json:"jitter"`
}

// HandshakeHold is the toxic handshake_hold, with no attributes: while it
// is present the proxy answers no SYN, and clients run into their own
// connect timeout. Removing it completes the held handshakes.
type HandshakeHold struct{}

// HandshakeRefuse is the toxic handshake_refuse: it answers each SYN with a
// RST Delay milliseconds after it arrived ({"delay": 200}), so that the
// client's connect fails with "connection refused" then.
type HandshakeRefuse struct {
	Delay int64 `json:"delay"`
}

// Pipe passes data through: the toxic acts on the handshake only.
func (t *HandshakeDelay) Pipe(stub *toxics.ToxicStub) { new(toxics.NoopToxic).Pipe(stub) }

// Pipe passes data through: the toxic acts on the handshake only.
func (t *HandshakeHold) Pipe(stub *toxics.ToxicStub) { new(toxics.NoopToxic).Pipe(stub) }

// Pipe passes data through: the toxic acts on the handshake only.
func (t *HandshakeRefuse) Pipe(stub *toxics.ToxicStub) { new(toxics.NoopToxic).Pipe(stub) }

func (t *HandshakeDelay) check() error {
	if t.Delay < 0 || t.Jitter < 0 {
		return fmt.Errorf("%s: delay %d ms, jitter %d ms: both must be >= 0", typeDelay, t.Delay, t.Jitter)
	}
	return nil
}

func (t *HandshakeHold) check() error { return nil }

func (t *HandshakeRefuse) check() error {
	if t.Delay < 0 {
		return fmt.Errorf("%s: delay %d ms: must be >= 0", typeRefuse, t.Delay)
	}
	return nil
}

// handshakeToxic is a toxic that acts on handshakes.
type handshakeToxic interface {
	toxics.Toxic
	check() error
}

// resetPeer is toxiproxy's reset_peer toxic (same attributes, same Pipe),
// registered under its name in place of toxiproxy's type: toxiproxy's link
// asserts its connections are *net.TCPConn when it finds a *ResetToxic in
// the chain, and the proxy's connections are wrapped to know when they close.
// The proxy sets SO_LINGER 0 itself instead (see forwarder.connect).
type resetPeer struct {
	toxics.ResetToxic
}

func init() {
	toxics.Register(typeDelay, new(HandshakeDelay))
	toxics.Register(typeHold, new(HandshakeHold))
	toxics.Register(typeRefuse, new(HandshakeRefuse))
	toxics.Register("reset_peer", new(resetPeer))
}

// rule is one handshake toxic in a plan.
type rule struct {
	kind     string
	delay    time.Duration
	jitter   time.Duration
	toxicity float32
}

// plan is what a proxy's handshake toxics ask for, as one immutable value the
// capture path can read without a lock.
type plan struct {
	rules []rule
	hold  bool // a handshake_hold is present
}

// newPlan collects the handshake toxics of a chain, in chain order.
func newPlan(chain []toxics.Toxic) *plan {
	p := new(plan)
	for _, t := range chain {
		w, ok := t.(*toxics.ToxicWrapper)
		if !ok {
			continue
		}
		r := rule{kind: w.Type, toxicity: w.Toxicity}
		switch a := w.Toxic.(type) {
		case *HandshakeDelay:
			r.delay, r.jitter = ms(a.Delay), ms(a.Jitter)
		case *HandshakeRefuse:
			r.delay = ms(a.Delay)
		case *HandshakeHold:
			p.hold = true
		default:
			continue
		}
		p.rules = append(p.rules, r)
	}
	return p
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// empty reports whether the plan has no handshake toxic.
func (p *plan) empty() bool { return p == nil || len(p.rules) == 0 }

// randSource is the randomness decide draws from (a *rand.Rand, or a
// lockedRand shared by goroutines).
type randSource interface {
	Float32() float32
	Int64N(n int64) int64
}

// lockedRand is a *rand.Rand safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (l *lockedRand) Float32() float32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float32()
}

func (l *lockedRand) Int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Int64N(n)
}

// verdict is what becomes of one connection's handshake.
type verdict struct {
	at     time.Time // zero: held until the hold is removed
	refuse bool      // answer with a RST at at
}

// decide says what becomes of a connection whose first SYN arrived at syn.
// Each rule hits with its toxicity. A hold that hits holds the handshake;
// otherwise the delays of the rules that hit add up (a refuse's too), and a
// refuse that hits turns the answer into a RST.
func (p *plan) decide(syn time.Time, rng randSource) verdict {
	var v verdict
	var d time.Duration
	for _, r := range p.rules {
		if r.toxicity < 1 && rng.Float32() >= r.toxicity {
			continue
		}
		switch r.kind {
		case typeHold:
			return verdict{}
		case typeRefuse:
			v.refuse = true
		}
		d += r.delay
		if r.jitter > 0 {
			d += time.Duration(rng.Int64N(int64(2*r.jitter))) - r.jitter
		}
	}
	v.at = syn.Add(max(d, 0))
	return v
}
