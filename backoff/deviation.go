package backoff

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/synhold/synhold/internal/svgplot"
)

// Kind names a way in which a client's backoff departs from the policy.
type Kind string

// The deviations Analyze recognises.
const (
	// TooFewAttempts: the series has fewer gaps than Options.MinGaps. As
	// Analysis.Reason: no series has enough.
	TooFewAttempts Kind = "TooFewAttempts"
	// OutOfRange: a gap is outside its allowed range. It is only ever an
	// Analysis.Reason; the gaps' verdicts and the other deviations say more.
	OutOfRange Kind = "OutOfRange"
	// WrongInitial: the first gap is outside its allowed range.
	WrongInitial Kind = "WrongInitial"
	// JitteredFirstGap: the first gap is in range but differs from Initial
	// by more than the timing noise; gRPC does not jitter it.
	JitteredFirstGap Kind = "JitteredFirstGap"
	// NoJitter: the gaps after the first equal their expected values, give
	// or take a constant offset, within twice the timing noise plus 2% of
	// the longest gap (a late timer, not jitter).
	NoJitter Kind = "NoJitter"
	// WrongMultiplier: the fitted multiplier differs from the policy's by
	// more than 10%, and by more than three standard errors that the policy's
	// jitter alone would cause.
	WrongMultiplier Kind = "WrongMultiplier"
	// CompoundingJitter: each delay is drawn around the previous jittered
	// delay times the multiplier, instead of around Initial·Multiplier^n.
	//
	// It is detected from the residuals r(n) = ln(got/expected) of the gaps
	// before the cap (expected from the fitted line instead of the policy
	// when the multiplier is wrong, so that a steady trend does not pass for
	// a walk). Independent jitter makes r(n) independent draws of spread
	// σ = Jitter/√3; compounding makes r(n) = r(n-1) + such a draw, a random
	// walk whose steps stay within the jitter band. Taking both as Gaussian,
	// the log-likelihood ratio of walk over independent jitter is
	// (Σ r(n)² - Σ (r(n)-r(n-1))²) / 2σ², anchored at gap 0: about -steps/2
	// for independent jitter, growing with steps² for a walk (it is the von
	// Neumann ratio of successive differences to levels). The series is
	// flagged when at least 4 steps are available and the ratio exceeds 3
	// (the walk is e³ ≈ 20 times likelier), or when some gap is out of range
	// (independent jitter cannot explain it) while every step stays within
	// the jitter band and the ratio is positive. The cap stops the walk, so
	// only gaps before it count: a 20 s run at a 3 s cap has too few.
	//
	// On simulated 540 s runs at the 120 s cap with ±5 ms timestamp noise it
	// flags about 81% of compounding clients (the rest drift too little to
	// tell; about 14% of them pass the reference rule) and about 0.2% of
	// conformant ones.
	CompoundingJitter Kind = "CompoundingJitter"
	// CapNotHonoured: some gap exceeds Max·(1+Jitter) + Tolerance.
	CapNotHonoured Kind = "CapNotHonoured"
	// InterleavedAddresses: attempts to two or more destinations alternate
	// in time.
	InterleavedAddresses Kind = "InterleavedAddresses"
)

// Meaning says in one sentence what k means for the client.
func (k Kind) Meaning() string {
	switch k {
	case TooFewAttempts:
		return "There are too few attempts to judge the backoff (the first gap and one more are needed), so the client has not passed; the reference server passes a client that never retried."
	case OutOfRange:
		return "A gap between attempts is outside the range the reference rule allows around its expected backoff."
	case WrongInitial:
		return "The first retry came outside the range allowed around the initial backoff."
	case JitteredFirstGap:
		return "The first retry is jittered; gRPC waits exactly the initial backoff after the first failure and jitters only later backoffs."
	case NoJitter:
		return "The backoffs are not randomised, so clients that fail together retry together; it passes the reference rule but not the spec."
	case WrongMultiplier:
		return "The backoffs grow by a different factor than the policy's multiplier."
	case CompoundingJitter:
		return "Each backoff is drawn around the previous jittered backoff times the multiplier, so jitter accumulates like a random walk and long runs drift out of the allowed range."
	case CapNotHonoured:
		return "Backoffs grow past the maximum backoff (plus jitter and tolerance) instead of stopping at it."
	case InterleavedAddresses:
		return "The client retries several addresses (such as ::1 and 127.0.0.1), each with its own backoff; judged per address, but a server that lists them together, like the reference server, sees gaps of a few ms and fails the client."
	}
	return "Unknown deviation."
}

// Deviation is one recognised departure from the policy, with the numbers
// that show it.
type Deviation struct {
	Kind Kind `json:"kind"`
	// Detail says what in these attempts shows it, with the numbers.
	Detail string `json:"detail"`
	// Meaning is Kind.Meaning(), for a reader of the JSON.
	Meaning string `json:"meaning"`
}

// deviation builds a Deviation of kind k.
func deviation(k Kind, format string, args ...any) Deviation {
	return Deviation{Kind: k, Detail: fmt.Sprintf(format, args...), Meaning: k.Meaning()}
}

// seriesDeviations names the deviations of one judged series.
func seriesDeviations(s Series, p Policy, opt Options) []Deviation {
	var out []Deviation
	for _, check := range []func(Series, Policy, Options) (Deviation, bool){
		tooFew, firstGap, noJitter, wrongMultiplier, compounding, capNotHonoured,
	} {
		if d, ok := check(s, p, opt); ok {
			out = append(out, d)
		}
	}
	return out
}

// tooFew checks for TooFewAttempts.
func tooFew(s Series, _ Policy, opt Options) (Deviation, bool) {
	if len(s.Gaps) >= opt.MinGaps {
		return Deviation{}, false
	}
	return deviation(TooFewAttempts, "%s (%s) to %s; at least %d attempts (%d gaps) are needed",
		svgplot.Plural(len(s.Attempts), "attempt"), svgplot.Plural(len(s.Gaps), "gap"), addrString(s.Dst), opt.MinGaps+1, opt.MinGaps), true
}

// firstGap checks for WrongInitial and JitteredFirstGap.
func firstGap(s Series, _ Policy, opt Options) (Deviation, bool) {
	if len(s.Gaps) == 0 {
		return Deviation{}, false
	}
	g := s.Gaps[0]
	if g.Verdict != OK {
		return deviation(WrongInitial, "first gap %s, allowed %s to %s",
			formatMs(g.Got), formatMs(g.Lo), formatMs(g.Hi)), true
	}
	if off := g.Got - g.Expected; off > opt.Noise || off < -opt.Noise {
		return deviation(JitteredFirstGap, "first gap %s is %+.1f%% from the initial backoff %s",
			formatMs(g.Got), 100*g.Deviation(), formatMs(g.Expected)), true
	}
	return Deviation{}, false
}

// noJitter checks for NoJitter: at least three gaps after the first, all
// equal to their expected values plus one common offset, to within twice the
// noise. Three are needed: one or two gaps can agree by chance.
func noJitter(s Series, p Policy, opt Options) (Deviation, bool) {
	if p.Jitter <= 0 {
		return Deviation{}, false
	}
	var (
		offs    []time.Duration
		longest time.Duration
	)
	for _, g := range s.Gaps[min(1, len(s.Gaps)):] {
		offs = append(offs, g.Got-g.Expected)
		longest = max(longest, g.Expected)
	}
	if len(offs) < 3 {
		return Deviation{}, false
	}
	// A client's timer fires late by an amount that grows with the load
	// and, a little, with the delay (45 ms on a 2.56 s timer was seen on a
	// busy 2-core machine); jitter spreads gaps by tens of percent. So the
	// allowance is twice the timestamp noise plus 2% of the longest gap.
	lo, hi := slices.Min(offs), slices.Max(offs)
	if hi-lo > 2*opt.Noise+longest/50 {
		return Deviation{}, false
	}
	return deviation(NoJitter, "%d gaps after the first are all within %s of expected (offsets %s to %s); jitter %.0f%% would spread them by up to ±%.0f%%",
		len(offs), formatMs(max(-lo, hi)), formatMs(lo), formatMs(hi), 100*p.Jitter, 100*p.Jitter), true
}

// wrongMultiplier checks for WrongMultiplier.
func wrongMultiplier(s Series, p Policy, _ Options) (Deviation, bool) {
	if !multiplierWrong(s.Fit, p) {
		return Deviation{}, false
	}
	return deviation(WrongMultiplier, "fitted multiplier %.3f from %d gaps before the cap, policy %.3g",
		s.Fit.Multiplier, s.Fit.Points, p.Multiplier), true
}

// multiplierWrong reports whether f's multiplier is far from p's: more than
// 10% off (in logarithm) and more than three standard errors that jitter
// alone would cause.
func multiplierWrong(f Fit, p Policy) bool {
	if f.Multiplier <= 0 || p.Multiplier <= 0 {
		return false
	}
	off := math.Abs(math.Log(f.Multiplier / p.Multiplier))
	return off > max(0.1, 3*jitterStdErr(f, p))
}

// compounding checks for CompoundingJitter.
func compounding(s Series, p Policy, opt Options) (Deviation, bool) {
	w := randomWalk(s.Gaps, p, s.Fit, multiplierWrong(s.Fit, p), opt.Noise)
	if !w.compounds() {
		return Deviation{}, false
	}
	return deviation(CompoundingJitter, "over %d gaps before the cap ln(got/expected) drifts like a random walk to %+.0f%% at gap %d (walk over independent jitter: log-likelihood ratio %.1f)",
		w.steps, 100*math.Expm1(w.drift), w.at, w.llr), true
}

// capNotHonoured checks for CapNotHonoured.
func capNotHonoured(s Series, p Policy, _ Options) (Deviation, bool) {
	if p.Max <= 0 {
		return Deviation{}, false
	}
	limit := time.Duration(float64(p.Max)*(1+p.Jitter)) + Tolerance
	var over []string
	for _, g := range s.Gaps {
		if g.Got > limit {
			over = append(over, fmt.Sprintf("gap %d %s", g.Index, formatMs(g.Got)))
		}
	}
	if len(over) == 0 {
		return Deviation{}, false
	}
	return deviation(CapNotHonoured, "%s above the limit %s (max %s)",
		strings.Join(over, ", "), formatMs(limit), formatMs(p.Max)), true
}

// captureDeviations names the deviations of the kept attempts as a whole.
func captureDeviations(series []Series, kept []Attempt) []Deviation {
	var out []Deviation
	if d, ok := interleaved(series, kept); ok {
		out = append(out, d)
	}
	return out
}

// interleaved checks for InterleavedAddresses: two series whose time spans
// overlap.
func interleaved(series []Series, kept []Attempt) (Deviation, bool) {
	var names []string
	families := map[bool]bool{}
	for i, s := range series {
		for _, t := range series[i+1:] {
			if overlap(s, t) {
				names = appendNew(names, addrString(s.Dst), addrString(t.Dst))
				families[s.Dst.Addr().Is4()] = true
				families[t.Dst.Addr().Is4()] = true
			}
		}
	}
	if len(names) == 0 {
		return Deviation{}, false
	}
	fam := "one address family"
	if len(families) == 2 {
		fam = "IPv4 and IPv6"
	}
	shortest := slices.Min(gaps(kept))
	return deviation(InterleavedAddresses, "attempts to %s alternate (%s); merged, the shortest gap is %s",
		strings.Join(names, " and "), fam, formatMs(shortest)), true
}

// overlap reports whether the attempts of s and t interleave in time.
func overlap(s, t Series) bool {
	sa, sz := s.Attempts[0].Time, s.Attempts[len(s.Attempts)-1].Time
	ta, tz := t.Attempts[0].Time, t.Attempts[len(t.Attempts)-1].Time
	return sa.Before(tz) && ta.Before(sz)
}

// appendNew appends the strings of add that names does not hold yet.
func appendNew(names []string, add ...string) []string {
	for _, a := range add {
		if !slices.Contains(names, a) {
			names = append(names, a)
		}
	}
	return names
}
