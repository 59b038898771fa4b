package backoff

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// A model draws the gaps of a simulated client that retries for run.
type model func(run time.Duration, r *rand.Rand) []time.Duration

// until collects the gaps next draws while the attempts they lead to stay
// within run.
func until(run time.Duration, next func(n int) time.Duration) []time.Duration {
	var gs []time.Duration
	var t time.Duration
	for n := 0; ; n++ {
		g := next(n)
		if t+g > run || g <= 0 && n > 10000 {
			return gs
		}
		t += g
		gs = append(gs, g)
	}
}

// conformant follows p as the spec says.
func conformant(p Policy) model {
	return func(run time.Duration, r *rand.Rand) []time.Duration {
		return until(run, func(n int) time.Duration { return p.Delay(n, r) })
	}
}

// unjittered waits exactly the expected gaps.
func unjittered(p Policy) model {
	return func(run time.Duration, _ *rand.Rand) []time.Duration {
		return until(run, p.Expected)
	}
}

// lateTimers waits the expected gaps, each timer firing up to late after
// its time (a client on a busy machine): still no jitter.
func lateTimers(p Policy, late time.Duration) model {
	return func(run time.Duration, r *rand.Rand) []time.Duration {
		return until(run, func(n int) time.Duration { return p.Expected(n) + time.Duration(r.Int64N(int64(late))) })
	}
}

// compounder draws each delay around the previous jittered delay times the
// multiplier, capping before the jitter: the widely used client whose jitter
// compounds.
func compounder(p Policy) model {
	return func(run time.Duration, r *rand.Rand) []time.Duration {
		next := float64(p.Initial)
		return until(run, func(int) time.Duration {
			g := time.Duration(next)
			next = min(next*p.Multiplier, float64(p.Max)) * (1 + p.Jitter*(2*r.Float64()-1))
			return g
		})
	}
}

// constant waits d every time.
func constant(d time.Duration) model {
	return func(run time.Duration, _ *rand.Rand) []time.Duration {
		return until(run, func(int) time.Duration { return d })
	}
}

// with returns Default with its multiplier and maximum replaced.
func with(multiplier float64, max time.Duration) Policy {
	p := Default()
	p.Multiplier, p.Max = multiplier, max
	return p
}

var (
	t0       = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	client4  = netip.MustParseAddrPort("127.0.0.1:40000")
	client6  = netip.MustParseAddrPort("[::1]:40001")
	server4  = netip.MustParseAddrPort("127.0.0.1:8081")
	server6  = netip.MustParseAddrPort("[::1]:8081")
	stranger = netip.MustParseAddrPort("10.1.2.3:50000")
)

// attemptsAt turns gaps into attempts from src to dst starting at start,
// moving every timestamp by a uniform noise in ±noise. Each attempt gets its
// own source port and ISN, as a real client's would.
func attemptsAt(start time.Time, gs []time.Duration, src, dst netip.AddrPort, noise time.Duration, r *rand.Rand) []Attempt {
	t := start
	var out []Attempt
	for i := 0; i <= len(gs); i++ {
		jit := time.Duration(0)
		if noise > 0 {
			jit = time.Duration(r.Int64N(int64(2*noise)+1)) - noise
		}
		out = append(out, Attempt{
			Time:   t.Add(jit),
			Src:    netip.AddrPortFrom(src.Addr(), src.Port()+uint16(i)),
			Dst:    dst,
			ISN:    r.Uint32(),
			HasISN: true,
		})
		if i < len(gs) {
			t = t.Add(gs[i])
		}
	}
	return out
}

// seeded returns a reproducible source for seed.
func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }
