package backoff

import (
	"math"
	"time"
)

// uniformStdDev is the standard deviation of a uniform jitter in ±j, which is
// also, to within 1% for j ≤ 0.2, that of its logarithm ln(1+u).
func uniformStdDev(j float64) float64 { return j / math.Sqrt(3) }

// growth returns the leading gaps that precede the cap: those whose expected
// value is below Max, up to the first that already looks capped (at least
// Max·(1-Jitter) - Tolerance and later than its range allows, as happens when
// the client grows faster than p). Only these gaps say anything about the
// multiplier or about how jitter accumulates.
func growth(gs []Gap, p Policy) []Gap {
	floor := time.Duration(float64(p.Max)*(1-p.Jitter)) - Tolerance
	var out []Gap
	for _, g := range gs {
		if p.Max > 0 && g.Expected >= p.Max {
			break
		}
		if p.Max > 0 && g.Got >= floor && g.Verdict == Late {
			break
		}
		out = append(out, g)
	}
	return out
}

// positive returns the gaps longer than zero, whose logarithms exist.
func positive(gs []Gap) []Gap {
	var out []Gap
	for _, g := range gs {
		if g.Got > 0 {
			out = append(out, g)
		}
	}
	return out
}

// minDoF is the fewest residual degrees of freedom an error is estimated
// from: with one, the estimate rests on a single residual and can be off by
// any factor.
const minDoF = 2

// fit fits ln(gap n) = a + b·n by least squares over the gaps before the cap.
// Least squares on logarithms weighs every gap alike, as multiplicative
// jitter does; it needs three gaps so that two can disagree with a line, and
// four for the standard error of the slope, which comes from the residuals.
func fit(gs []Gap, p Policy) Fit {
	pts := positive(growth(gs, p))
	f := Fit{Points: len(pts)}
	if len(pts) < 3 {
		return f
	}
	var sx, sy float64
	for _, g := range pts {
		sx += float64(g.Index)
		sy += math.Log(millis(g.Got))
	}
	n := float64(len(pts))
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for _, g := range pts {
		dx := float64(g.Index) - mx
		sxx += dx * dx
		sxy += dx * (math.Log(millis(g.Got)) - my)
	}
	if sxx == 0 {
		return f
	}
	b := sxy / sxx
	f.Multiplier = math.Exp(b)
	f.Initial = fromMillis(math.Exp(my - b*mx))
	f.sxx = sxx
	if dof := len(pts) - 2; dof >= minDoF {
		var rss float64
		for _, g := range pts {
			r := math.Log(millis(g.Got)) - my - b*(float64(g.Index)-mx)
			rss += r * r
		}
		f.StdErr = math.Sqrt(rss/float64(dof)) / math.Sqrt(sxx)
		f.DoF = dof
	}
	return f
}

// jitterStdErr is the standard error of ln(f.Multiplier) that uniform jitter
// in ±p.Jitter alone would cause: the spread a conformant client's fit has.
// WrongMultiplier tests against it, since a client that follows p has
// exactly this spread; it says nothing of the client's actual gaps, which
// Fit.StdErr measures.
func jitterStdErr(f Fit, p Policy) float64 {
	if f.sxx <= 0 {
		return 0
	}
	return uniformStdDev(p.Jitter) / math.Sqrt(f.sxx)
}

// spread measures the relative deviation of the gaps after the first.
func spread(gs []Gap, p Policy) Spread {
	s := Spread{Uniform: uniformStdDev(p.Jitter)}
	var sum float64
	var devs []float64
	for _, g := range gs {
		if g.Index == 0 || g.Expected <= 0 {
			continue
		}
		d := g.Deviation()
		if len(devs) == 0 || d < s.Min {
			s.Min = d
		}
		if len(devs) == 0 || d > s.Max {
			s.Max = d
		}
		devs = append(devs, d)
		sum += d
	}
	s.Gaps = len(devs)
	if len(devs)-1 < minDoF {
		return s
	}
	n := float64(len(devs))
	mean := sum / n
	var ss float64
	for _, d := range devs {
		ss += (d - mean) * (d - mean)
	}
	s.DoF = len(devs) - 1
	s.Mean = mean
	s.StdDev = math.Sqrt(ss / float64(s.DoF))
	s.MeanStdErr = s.StdDev / math.Sqrt(n)
	s.StdDevStdErr = s.StdDev / math.Sqrt(2*float64(s.DoF))
	return s
}

// walk is the evidence that jitter compounds.
type walk struct {
	steps   int     // gaps after the anchor
	llr     float64 // log-likelihood ratio, random walk over independent jitter
	outside bool    // some gap is outside its range: independent jitter cannot explain it
	inBand  bool    // every step stays within the jitter band: a random walk can
	drift   float64 // the residual farthest from 0
	at      int     // its gap index
}

// compounds reports whether w is strong evidence that jitter compounds.
// Either the random walk is e^3 ≈ 20 times likelier than independent jitter,
// or independent jitter is impossible (a gap is out of range) while a random
// walk explains every step and is the likelier of the two.
func (w walk) compounds() bool {
	const minSteps = 4
	return w.steps >= minSteps && (w.llr > 3 || w.outside && w.inBand && w.llr > 0)
}

// randomWalk measures how much better a random walk explains the residuals
// of the gaps before the cap than independent jitter does; the
// CompoundingJitter constant documents the method. With detrend the
// residuals are taken from the fitted line rather than from the policy.
func randomWalk(gs []Gap, p Policy, f Fit, detrend bool, noise time.Duration) walk {
	pts := positive(growth(gs, p))
	sigma := uniformStdDev(p.Jitter)
	if len(pts) < 2 || sigma == 0 || detrend && f.Multiplier <= 0 {
		return walk{}
	}
	residual := func(g Gap) float64 {
		if detrend {
			return math.Log(millis(g.Got)/millis(f.Initial)) - float64(g.Index)*math.Log(f.Multiplier)
		}
		return math.Log(millis(g.Got) / millis(g.Expected))
	}
	w := walk{inBand: !detrend}
	prev, prevExp := residual(pts[0]), pts[0].Expected
	var levels, steps float64
	for _, g := range pts[1:] {
		r := residual(g)
		d := r - prev
		levels += r * r
		steps += d * d
		eps := 0.01 + 2*millis(noise)/millis(prevExp)
		if d < math.Log(1-p.Jitter)-eps || d > math.Log(1+p.Jitter)+eps {
			w.inBand = false
		}
		if !detrend && g.Verdict != OK {
			w.outside = true
		}
		if math.Abs(r) > math.Abs(w.drift) {
			w.drift, w.at = r, g.Index
		}
		prev, prevExp = r, g.Expected
		w.steps++
	}
	w.llr = (levels - steps) / (2 * sigma * sigma)
	return w
}
