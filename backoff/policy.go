package backoff

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"time"
)

// Tolerance is the allowance for transmission delay that the reference
// server adds on both sides of every allowed range (kTransmissionDelay,
// 100 ms, in grpc's test/cpp/interop/reconnect_interop_server.cc).
const Tolerance = 100 * time.Millisecond

// Policy is a connection backoff policy as gRPC's connection-backoff.md
// describes it: after a failed attempt the client waits Initial, then each
// later wait is the previous un-jittered wait times Multiplier, capped at Max,
// and moved by a uniform random factor in [1-Jitter, 1+Jitter].
//
// A Max of zero or less means no cap. MinConnectTimeout is the least time an
// attempt may take before it is abandoned; it does not change the gaps between
// attempts against a server that closes every connection at once, and is kept
// so that one value describes a client completely.
type Policy struct {
	Initial           time.Duration
	Multiplier        float64
	Jitter            float64
	Max               time.Duration
	MinConnectTimeout time.Duration
}

// Default returns gRPC's standard policy: 1 s initial backoff, multiplier
// 1.6, jitter 0.2, 120 s maximum backoff and 20 s minimum connect timeout.
func Default() Policy {
	return Policy{
		Initial:           time.Second,
		Multiplier:        1.6,
		Jitter:            0.2,
		Max:               120 * time.Second,
		MinConnectTimeout: 20 * time.Second,
	}
}

// Expected returns the n-th gap (n from 0) a client following p would leave
// between attempts before jitter: min(Initial·Multiplier^n, Max). Gap 0, the
// wait after the first failed attempt, is Initial and is never jittered.
//
// The power is computed by repeated multiplication in float64 milliseconds,
// the way the reference server computes it, so that Range agrees with
// Reference to the last bit.
func (p Policy) Expected(n int) time.Duration {
	return fromMillis(p.expectedMillis(n))
}

// Range returns the gaps the reference rule accepts for the n-th gap:
// [Expected(n)·(1-Jitter) - Tolerance, Expected(n)·(1+Jitter) + Tolerance].
func (p Policy) Range(n int) (lo, hi time.Duration) {
	l, h := p.rule().bounds(p.expectedMillis(n))
	return fromMillis(l), fromMillis(h)
}

// Delay draws the n-th delay of a client that follows p: Initial for n = 0
// (gRPC does not jitter the first backoff), and Expected(n) times a uniform
// factor in [1-Jitter, 1+Jitter] after that. A nil r uses the global source
// of math/rand/v2. A client written to exercise a reconnect server (or to
// produce attempts for Analyze) paces its attempts with it; this package's
// tests simulate conformant clients so.
func (p Policy) Delay(n int, r *rand.Rand) time.Duration {
	e := p.expectedMillis(n)
	if n == 0 {
		return fromMillis(e)
	}
	u := rand.Float64()
	if r != nil {
		u = r.Float64()
	}
	return fromMillis(math.Max(0, e*(1+p.Jitter*(2*u-1))))
}

// expectedMillis is Expected in float64 milliseconds.
func (p Policy) expectedMillis(n int) float64 {
	l := p.rule().ladder()
	e := l.next()
	for i := 0; i < n; i++ {
		if l.settled() {
			break
		}
		e = l.next()
	}
	return e
}

// rule returns the reference rule with p's parameters.
func (p Policy) rule() rule {
	return rule{
		initial:    millis(p.Initial),
		multiplier: p.Multiplier,
		jitter:     p.Jitter,
		max:        millis(p.Max),
		hasMax:     p.Max > 0,
		capFirst:   false, // as the spec and the reference: the first backoff is INITIAL_BACKOFF
		tolerance:  millis(Tolerance),
	}
}

// policyJSON is Policy as JSON, with durations in milliseconds.
type policyJSON struct {
	InitialMs           float64 `json:"initial_ms"`
	Multiplier          float64 `json:"multiplier"`
	Jitter              float64 `json:"jitter"`
	MaxMs               float64 `json:"max_ms"`
	MinConnectTimeoutMs float64 `json:"min_connect_timeout_ms"`
}

// MarshalJSON writes p with durations in milliseconds (initial_ms, max_ms,
// min_connect_timeout_ms).
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(policyJSON{
		InitialMs:           millis(p.Initial),
		Multiplier:          p.Multiplier,
		Jitter:              p.Jitter,
		MaxMs:               millis(p.Max),
		MinConnectTimeoutMs: millis(p.MinConnectTimeout),
	})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var v policyJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Policy{
		Initial:           fromMillis(v.InitialMs),
		Multiplier:        v.Multiplier,
		Jitter:            v.Jitter,
		Max:               fromMillis(v.MaxMs),
		MinConnectTimeout: fromMillis(v.MinConnectTimeoutMs),
	}
	return nil
}

// rule is the reference server's check, in float64 milliseconds, with its
// parameters made variable. Policy and Reference share it so that their
// verdicts cannot drift apart.
type rule struct {
	initial, multiplier, jitter float64
	max                         float64
	hasMax                      bool // cap expected gaps at max
	capFirst                    bool // cap gap 0 too (the reference does not)
	tolerance                   float64
}

// bounds returns the allowed range around expected, computed with the same
// operations, in the same order, as the reference server.
func (r rule) bounds(expected float64) (lo, hi float64) {
	lo = expected*(1-r.jitter) - r.tolerance
	hi = expected*(1+r.jitter) + r.tolerance
	return lo, hi
}

// verdict judges a gap, truncated to whole milliseconds as the reference
// server does, against expected.
func (r rule) verdict(gap time.Duration, expected float64) GapVerdict {
	got := float64(referenceMillis(gap))
	lo, hi := r.bounds(expected)
	switch {
	case got < lo:
		return Early
	case got > hi:
		return Late
	}
	return OK
}

// ladder returns the sequence of expected gaps.
func (r rule) ladder() *ladder {
	e := r.initial
	if r.capFirst && r.hasMax && e > r.max {
		e = r.max
	}
	return &ladder{r: r, e: e}
}

// ladder yields expected gaps 0, 1, 2, ...: each is the previous one times the
// multiplier, then capped, exactly as the reference server's loop does.
type ladder struct {
	r    rule
	e    float64
	done bool // e can no longer change
}

// next returns the current expected gap and steps to the following one.
func (l *ladder) next() float64 {
	e := l.e
	n := e * l.r.multiplier
	if l.r.hasMax && n > l.r.max {
		n = l.r.max
	}
	l.done = n == e
	l.e = n
	return e
}

// settled reports whether every later gap equals the last one returned.
func (l *ladder) settled() bool { return l.done }

// millis converts d to float64 milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fromMillis converts float64 milliseconds to a Duration, rounding to the
// nanosecond and saturating instead of overflowing.
func fromMillis(ms float64) time.Duration {
	ns := math.Round(ms * float64(time.Millisecond))
	switch {
	case math.IsNaN(ns):
		return 0
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(ns)
}
