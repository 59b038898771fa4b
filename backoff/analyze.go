package backoff

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/synhold/synhold/internal/svgplot"
)

// Attempt is one connection attempt as the server saw it: the time of its
// SYN (or of accept, or any other timestamp), the addresses, and the SYN's
// initial sequence number when it is known.
type Attempt struct {
	Time   time.Time      `json:"time"`
	Src    netip.AddrPort `json:"src"`
	Dst    netip.AddrPort `json:"dst"`
	ISN    uint32         `json:"isn"`
	HasISN bool           `json:"has_isn"`
}

// Options says which attempts come from the client under test and how
// precise the timestamps are. The zero value accepts every source.
type Options struct {
	// Clients lists the client's addresses. IPv4-mapped IPv6 addresses
	// match their IPv4 form.
	Clients []netip.Addr
	// Accept, when set, accepts further source addresses.
	Accept func(netip.Addr) bool
	// Noise is the timing noise of the timestamps, used to decide that gaps
	// are equal; DefaultNoise when zero.
	Noise time.Duration
	// MinGaps is the fewest gaps a series needs before its backoff can be
	// judged; DefaultMinGaps when zero. With fewer the series does not pass
	// (TooFewAttempts), whatever the reference rule says.
	MinGaps int
	// Observed is how long the client was watched, such as the test's time
	// from Start to Stop, for the report of a client with too few attempts.
	// When zero, the time from the first attempt to the last is given.
	Observed time.Duration
}

// Defaults for Options.
const (
	// DefaultNoise is a few milliseconds: kernel timestamps of SYNs are far
	// more precise, but a client's timers and scheduler are not.
	DefaultNoise = 10 * time.Millisecond
	// DefaultMinGaps is the fewest gaps that show a backoff: the first,
	// which is the initial backoff, and one more, which shows the growth and
	// the jitter.
	DefaultMinGaps = 2
)

// Loopback returns Options that accept every loopback address, IPv4 and
// IPv6, as the client under test: the usual set-up of the interop test.
func Loopback() Options {
	return Options{Accept: netip.Addr.IsLoopback}
}

// accepts reports whether a attempts come from the client under test.
func (o Options) accepts(a netip.Addr) bool {
	if len(o.Clients) == 0 && o.Accept == nil {
		return true
	}
	a = a.Unmap()
	for _, c := range o.Clients {
		if c.Unmap() == a {
			return true
		}
	}
	return o.Accept != nil && o.Accept(a)
}

// withDefaults fills in the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Noise <= 0 {
		o.Noise = DefaultNoise
	}
	if o.MinGaps <= 0 {
		o.MinGaps = DefaultMinGaps
	}
	return o
}

// Reason says why an attempt was left out of every series.
type Reason string

// The reasons for removing an attempt.
const (
	// Retransmission is a SYN with the source and ISN of an earlier one: the
	// same attempt, sent again by the kernel.
	Retransmission Reason = "retransmission"
	// ForeignSource is an attempt from an address that is not the client's.
	ForeignSource Reason = "foreign source"
)

// Removed is an attempt left out of the analysis, and why.
type Removed struct {
	Attempt Attempt       `json:"attempt"`
	At      time.Duration `json:"-"` // since Analysis.Start
	Reason  Reason        `json:"reason"`
	Detail  string        `json:"detail"`
}

// GapVerdict is the reference rule's judgement of one gap.
type GapVerdict string

// The verdicts for a gap.
const (
	OK    GapVerdict = "ok"
	Early GapVerdict = "early" // shorter than the allowed range
	Late  GapVerdict = "late"  // longer than the allowed range
)

// Gap is the wait between two consecutive attempts of a series.
type Gap struct {
	// Index is n in Policy.Expected(n): 0 for the gap after the first
	// attempt.
	Index int           `json:"index"`
	At    time.Duration `json:"-"` // time of the attempt that ends it, since Analysis.Start
	// Got is the gap itself; Expected what Policy.Expected(Index) says.
	Got      time.Duration `json:"-"`
	Expected time.Duration `json:"-"`
	Lo, Hi   time.Duration `json:"-"` // the range the reference rule allows
	// Verdict says whether Got lies in [Lo, Hi], or on which side.
	Verdict GapVerdict `json:"verdict"`
}

// Deviation returns the relative deviation of the gap from its expected
// value, (Got-Expected)/Expected; its jitter, for a conformant client.
func (g Gap) Deviation() float64 {
	if g.Expected == 0 {
		return 0
	}
	return float64(g.Got-g.Expected) / float64(g.Expected)
}

// Fit is the growth of a series' gaps before the cap: the least-squares line
// through (n, ln gap n).
type Fit struct {
	// Multiplier is e^slope; 0 when fewer than 3 gaps precede the cap.
	Multiplier float64 `json:"multiplier"`
	// Initial is e^intercept, the fitted gap 0.
	Initial time.Duration `json:"-"`
	// Points is the number of gaps used.
	Points int `json:"points"`
	// StdErr is the standard error of ln(Multiplier) estimated from the
	// residuals of the fit, √(Σ residual²/DoF) over the spread of n; so
	// Multiplier·StdErr is that of Multiplier. It is only an estimate when
	// DoF > 0: with fewer than 4 points there are too few residuals to tell
	// the client's jitter from chance, and StdErr is 0.
	StdErr float64 `json:"std_err"`
	// DoF is the residual degrees of freedom behind StdErr, Points-2, or 0
	// when StdErr was not estimated.
	DoF int `json:"dof"`

	sxx float64 // Σ(n - mean n)², for the spread jitter alone would cause
}

// Spread summarises the jitter of a series: the relative deviations
// (got-expected)/expected of its gaps after the first, which gRPC does not
// jitter. Mean, StdDev and their standard errors are estimated from the
// deviations only when DoF > 0, which needs at least 3 of them; they are 0
// otherwise.
type Spread struct {
	// Gaps is how many deviations there are: the gaps after the first.
	Gaps int `json:"gaps"`
	// Min and Max are the extreme deviations, as fractions (-0.1 is 10%
	// short), like every figure here.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Mean is the mean deviation; MeanStdErr its standard error,
	// StdDev/√Gaps.
	Mean       float64 `json:"mean"`
	MeanStdErr float64 `json:"mean_std_err"`
	// StdDev is the sample standard deviation; StdDevStdErr its standard
	// error, StdDev/√(2·DoF) (exact for Gaussian deviations, close for
	// uniform ones).
	StdDev       float64 `json:"std_dev"`
	StdDevStdErr float64 `json:"std_dev_std_err"`
	// DoF is Gaps-1 when the figures above were estimated, else 0.
	DoF int `json:"dof"`
	// Uniform is the standard deviation of uniform jitter in ±Jitter,
	// Jitter/√3, that a conformant client's StdDev is near: the policy's
	// figure, not the data's.
	Uniform float64 `json:"uniform_std_dev"`
}

// Series is the attempts a client made to one destination, which gRPC backs
// off independently of its other addresses.
type Series struct {
	// Dst is the destination, IPv4-mapped addresses unmapped.
	Dst netip.AddrPort `json:"dst"`
	// Attempts are the kept attempts to Dst in time order, and Gaps the
	// waits between consecutive ones.
	Attempts []Attempt `json:"attempts"`
	Gaps     []Gap     `json:"gaps"`
	// Passed is true when the series has at least Options.MinGaps gaps and
	// every gap is within its Policy.Range; with the default initial
	// backoff, multiplier and jitter it is ReferencePassed with enough gaps.
	Passed bool `json:"passed"`
	// ReferencePassed is Reference(policy.Max, gaps): the reference server's
	// verdict had it seen only this series.
	ReferencePassed bool `json:"reference_passed"`
	// Fit is the fitted growth of the gaps, Jitter their spread around
	// the expected ones, and Deviations those this series shows.
	Fit        Fit         `json:"fit"`
	Jitter     Spread      `json:"jitter"`
	Deviations []Deviation `json:"deviations"`
}

// Durations returns the gaps of s.
func (s Series) Durations() []time.Duration {
	d := make([]time.Duration, len(s.Gaps))
	for i, g := range s.Gaps {
		d[i] = g.Got
	}
	return d
}

// BackoffMs returns the gaps in milliseconds as the reference server puts
// them in ReconnectInfo.backoff_ms.
func (s Series) BackoffMs() []int32 {
	ms := make([]int32, len(s.Gaps))
	for i, g := range s.Gaps {
		ms[i] = referenceMillis(g.Got)
	}
	return ms
}

// Has reports whether s shows deviation k.
func (s Series) Has(k Kind) bool {
	return slices.ContainsFunc(s.Deviations, func(d Deviation) bool { return d.Kind == k })
}

// Analysis is the judgement of a set of attempts.
type Analysis struct {
	// Policy is the policy the attempts were judged against.
	Policy Policy `json:"policy"`
	// Passed is true when at least one series passes (so has enough gaps to
	// judge) and every gap of every series is within its range. A series of
	// too few attempts to a second address does not fail a client whose
	// first address shows its backoff, but a client that never retried
	// fails, unlike on the reference server.
	Passed bool `json:"passed"`
	// Reason says why Passed is false: TooFewAttempts ("the client made N
	// attempts in D; it stopped retrying or never started", D being
	// Options.Observed, or the span of the attempts) or OutOfRange
	// (the first gap outside its range, and how many more). Nil when passed.
	Reason *Deviation `json:"reason,omitempty"`
	// MergedReferencePassed is the reference server's verdict on all kept
	// attempts as one list, which is what it reports when a client tries
	// several addresses, and which passes a client that never retried.
	MergedReferencePassed bool `json:"reference_passed"`
	// ReferenceBackoffMs is the gaps of that list in whole milliseconds,
	// which the reference server returns as ReconnectInfo.backoff_ms.
	ReferenceBackoffMs []int32 `json:"reference_backoff_ms"`
	// Start is the time of the first kept attempt (of the first attempt when
	// none is kept); every offset is measured from it.
	Start time.Time `json:"start"`
	// Series are the kept attempts by destination, in the order the
	// client first tried each; Removed the attempts left out, and why.
	Series  []Series  `json:"series"`
	Removed []Removed `json:"removed"`
	// Deviations are those of the attempts as a whole, such as
	// InterleavedAddresses; each series lists its own.
	Deviations []Deviation `json:"deviations"`
}

// Primary returns the series of the first address the client tried, the one
// whose gaps go into the gRPC ReconnectInfo (see Series.BackoffMs), and false
// when there is none.
func (a Analysis) Primary() (Series, bool) {
	if len(a.Series) == 0 {
		return Series{}, false
	}
	return a.Series[0], true
}

// BackoffMs returns the gaps of the primary series in whole milliseconds,
// as a reconnect server judging each address on its own returns them in
// ReconnectInfo.backoff_ms, and an empty list when there is no series.
func (a Analysis) BackoffMs() []int32 {
	if s, ok := a.Primary(); ok {
		return s.BackoffMs()
	}
	return []int32{}
}

// Has reports whether a, or any of its series, shows deviation k.
func (a Analysis) Has(k Kind) bool {
	if slices.ContainsFunc(a.Deviations, func(d Deviation) bool { return d.Kind == k }) {
		return true
	}
	return slices.ContainsFunc(a.Series, func(s Series) bool { return s.Has(k) })
}

// Analyze judges the attempts of a client reconnecting to a server that
// closes every connection, against p (Default when p is the zero Policy).
//
// It sorts the attempts by time; removes retransmitted SYNs (same source and
// ISN as an earlier SYN; the first one's time is kept) and attempts from
// sources opt does not accept; groups the rest by destination, unmapping
// IPv4-mapped addresses, in the order destinations were first tried; and
// judges each series' gaps with the reference rule, fits its multiplier,
// measures its jitter and names the deviations it recognises.
func Analyze(attempts []Attempt, p Policy, opt Options) Analysis {
	if p == (Policy{}) {
		p = Default()
	}
	opt = opt.withDefaults()
	sorted := slices.Clone(attempts)
	slices.SortStableFunc(sorted, func(x, y Attempt) int { return x.Time.Compare(y.Time) })

	a := Analysis{Policy: p}
	kept, removed := filter(sorted, opt)
	switch {
	case len(kept) > 0:
		a.Start = kept[0].Time
	case len(sorted) > 0:
		a.Start = sorted[0].Time
	}
	for i := range removed {
		removed[i].At = removed[i].Attempt.Time.Sub(a.Start)
	}
	a.Removed = removed
	for _, g := range group(kept) {
		a.Series = append(a.Series, judge(g, a.Start, p, opt))
	}
	a.MergedReferencePassed = Reference(p.Max, gaps(kept))
	a.ReferenceBackoffMs = make([]int32, 0, max(0, len(kept)-1))
	for _, g := range gaps(kept) {
		a.ReferenceBackoffMs = append(a.ReferenceBackoffMs, referenceMillis(g))
	}
	a.Deviations = captureDeviations(a.Series, kept)
	a.Passed, a.Reason = a.verdict(kept, opt)
	return a
}

// verdict decides Analysis.Passed and its Reason.
func (a Analysis) verdict(kept []Attempt, opt Options) (bool, *Deviation) {
	var bad []string
	var first Gap
	judged := false
	for _, s := range a.Series {
		judged = judged || s.Passed
		for _, g := range s.Gaps {
			if g.Verdict != OK {
				if len(bad) == 0 {
					first = g
				}
				bad = append(bad, addrString(s.Dst))
			}
		}
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 1 {
			more = fmt.Sprintf(", and %d more", len(bad)-1)
		}
		d := deviation(OutOfRange, "gap %d to %s was %s: %s, allowed %s to %s%s",
			first.Index, bad[0], first.Verdict, formatMs(first.Got), formatMs(first.Lo), formatMs(first.Hi), more)
		return false, &d
	}
	if !judged {
		d := tooFewOverall(kept, opt)
		return false, &d
	}
	return true, nil
}

// tooFewOverall is the TooFewAttempts reason of an analysis none of whose
// series has enough gaps.
func tooFewOverall(kept []Attempt, opt Options) Deviation {
	when := ""
	switch {
	case opt.Observed > 0:
		when = fmt.Sprintf(" in %.1f s", opt.Observed.Seconds())
	case len(kept) > 1:
		when = fmt.Sprintf(" in %.1f s between the first and the last", kept[len(kept)-1].Time.Sub(kept[0].Time).Seconds())
	}
	return deviation(TooFewAttempts, "the client made %s%s; it stopped retrying or never started (at least %d attempts to one address are needed)",
		svgplot.Plural(len(kept), "attempt"), when, opt.MinGaps+1)
}

// filter splits time-sorted attempts into those kept and those removed.
func filter(sorted []Attempt, opt Options) (kept []Attempt, removed []Removed) {
	type key struct {
		src netip.AddrPort
		isn uint32
	}
	first := map[key]time.Time{}
	for _, at := range sorted {
		if !opt.accepts(at.Src.Addr()) {
			removed = append(removed, Removed{Attempt: at, Reason: ForeignSource,
				Detail: fmt.Sprintf("source %s is not the client under test", addrString(at.Src))})
			continue
		}
		if at.HasISN {
			k := key{at.Src, at.ISN}
			if t, ok := first[k]; ok {
				removed = append(removed, Removed{Attempt: at, Reason: Retransmission,
					Detail: fmt.Sprintf("same source and ISN %d as the SYN %s earlier", at.ISN, formatMs(at.Time.Sub(t)))})
				continue
			}
			first[k] = at.Time
		}
		kept = append(kept, at)
	}
	return kept, removed
}

// group splits time-sorted attempts by destination, in order of first use.
func group(kept []Attempt) [][]Attempt {
	index := map[netip.AddrPort]int{}
	var groups [][]Attempt
	for _, at := range kept {
		k := destination(at.Dst)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], at)
	}
	return groups
}

// destination is the key of the backoff a client keeps for dst.
func destination(dst netip.AddrPort) netip.AddrPort {
	if !dst.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
}

// gaps returns the differences between consecutive attempts.
func gaps(attempts []Attempt) []time.Duration {
	if len(attempts) < 2 {
		return nil
	}
	d := make([]time.Duration, len(attempts)-1)
	for i := range d {
		d[i] = attempts[i+1].Time.Sub(attempts[i].Time)
	}
	return d
}

// judge analyses the attempts to one destination.
func judge(attempts []Attempt, start time.Time, p Policy, opt Options) Series {
	s := Series{
		Dst:      destination(attempts[0].Dst),
		Attempts: attempts,
		Passed:   len(attempts)-1 >= opt.MinGaps,
	}
	r := p.rule()
	l := r.ladder()
	for i, got := range gaps(attempts) {
		e := l.next()
		lo, hi := r.bounds(e)
		g := Gap{
			Index:    i,
			At:       attempts[i+1].Time.Sub(start),
			Got:      got,
			Expected: fromMillis(e),
			Lo:       fromMillis(lo),
			Hi:       fromMillis(hi),
			Verdict:  r.verdict(got, e),
		}
		s.Passed = s.Passed && g.Verdict == OK
		s.Gaps = append(s.Gaps, g)
	}
	s.ReferencePassed = Reference(p.Max, s.Durations())
	s.Fit = fit(s.Gaps, p)
	s.Jitter = spread(s.Gaps, p)
	s.Deviations = seriesDeviations(s, p, opt)
	return s
}

// addrString prints an address and port, or "address unknown" when it is (timestamps without addresses).
func addrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "address unknown"
	}
	return ap.String()
}

// formatMs prints a duration in milliseconds with one decimal.
func formatMs(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", millis(d))
}
