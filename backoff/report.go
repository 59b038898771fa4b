package backoff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/synhold/synhold/internal/svgplot"
)

// MarshalJSON writes g with its durations in milliseconds (at_ms, got_ms,
// expected_ms, lo_ms, hi_ms) and its relative deviation.
func (g Gap) MarshalJSON() ([]byte, error) {
	type plain Gap
	return json.Marshal(struct {
		plain
		AtMs       float64 `json:"at_ms"`
		GotMs      float64 `json:"got_ms"`
		ExpectedMs float64 `json:"expected_ms"`
		LoMs       float64 `json:"lo_ms"`
		HiMs       float64 `json:"hi_ms"`
		Deviation  float64 `json:"deviation"`
	}{plain(g), millis(g.At), millis(g.Got), millis(g.Expected), millis(g.Lo), millis(g.Hi), g.Deviation()})
}

// MarshalJSON writes a with its time in RFC 3339 with nanoseconds, as
// time.Time does, but without failing on years past 9999.
func (a Attempt) MarshalJSON() ([]byte, error) {
	type plain Attempt
	return json.Marshal(struct {
		plain
		Time string `json:"time"`
	}{plain(a), a.Time.Format(time.RFC3339Nano)})
}

// MarshalJSON writes a with its start time formatted as Attempt's.
func (a Analysis) MarshalJSON() ([]byte, error) {
	type plain Analysis
	return json.Marshal(struct {
		plain
		Start string `json:"start"`
	}{plain(a), a.Start.Format(time.RFC3339Nano)})
}

// MarshalJSON writes f with its fitted initial gap as initial_ms,
// multiplier as null when there is no fit, and std_err as null, with the
// reason in std_err_unknown, when there were too few gaps to estimate it.
func (f Fit) MarshalJSON() ([]byte, error) {
	type plain Fit
	v := struct {
		plain
		InitialMs      float64  `json:"initial_ms"`
		StdErr         *float64 `json:"std_err"`
		StdErrUnknown  string   `json:"std_err_unknown,omitempty"`
		MultiplierNull *float64 `json:"multiplier"`
	}{plain: plain(f), InitialMs: millis(f.Initial)}
	if f.Multiplier > 0 {
		v.MultiplierNull = &f.Multiplier
	}
	if f.DoF > 0 {
		v.StdErr = &f.StdErr
	} else {
		v.StdErrUnknown = f.stdErrMissing()
	}
	return json.Marshal(v)
}

// stdErrMissing says why f has no standard error.
func (f Fit) stdErrMissing() string {
	return fmt.Sprintf("too few gaps before the cap to estimate it from the residuals: %d, at least %d needed", f.Points, minDoF+2)
}

// MarshalJSON writes s with the figures it could not estimate as null, and
// the reason in unknown: min and max without gaps, the others with fewer
// than 3.
func (s Spread) MarshalJSON() ([]byte, error) {
	type plain Spread
	v := struct {
		plain
		Min          *float64 `json:"min"`
		Max          *float64 `json:"max"`
		Mean         *float64 `json:"mean"`
		MeanStdErr   *float64 `json:"mean_std_err"`
		StdDev       *float64 `json:"std_dev"`
		StdDevStdErr *float64 `json:"std_dev_std_err"`
		Unknown      string   `json:"unknown,omitempty"`
	}{plain: plain(s)}
	if s.Gaps > 0 {
		v.Min, v.Max = &s.Min, &s.Max
	}
	if s.DoF > 0 {
		v.Mean, v.MeanStdErr, v.StdDev, v.StdDevStdErr = &s.Mean, &s.MeanStdErr, &s.StdDev, &s.StdDevStdErr
	} else {
		v.Unknown = s.missing()
	}
	return json.Marshal(v)
}

// missing says why s has no estimated spread.
func (s Spread) missing() string {
	return fmt.Sprintf("too few jittered gaps (after the first) to estimate the spread: %d, at least %d needed", s.Gaps, minDoF+1)
}

// MarshalJSON writes r with its offset as at_ms.
func (r Removed) MarshalJSON() ([]byte, error) {
	type plain Removed
	return json.Marshal(struct {
		plain
		AtMs float64 `json:"at_ms"`
	}{plain(r), millis(r.At)})
}

// WriteText writes a report for a person: the policy, then for each series
// one line per gap (index, time since the first attempt, gap, expected gap,
// allowed range, verdict) and a summary, then the removed attempts, then the
// deviations, each with a sentence saying what it means.
func (a Analysis) WriteText(w io.Writer) error {
	var b strings.Builder
	a.writeHeader(&b)
	for i, s := range a.Series {
		writeSeries(&b, i, s)
	}
	a.writeRemoved(&b)
	a.writeDeviations(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHeader writes the overall verdict and the policy.
func (a Analysis) writeHeader(b *strings.Builder) {
	verdict := "FAILED"
	if a.Passed {
		verdict = "PASSED"
	}
	kept := 0
	for _, s := range a.Series {
		kept += len(s.Attempts)
	}
	fmt.Fprintf(b, "backoff: %s: %d series, %s kept, %d removed\n", verdict, len(a.Series), svgplot.Plural(kept, "attempt"), len(a.Removed))
	p := a.Policy
	fmt.Fprintf(b, "policy: initial %s, multiplier %g, jitter %g, max %s, tolerance %s\n",
		formatMs(p.Initial), p.Multiplier, p.Jitter, formatMs(p.Max), formatMs(Tolerance))
	if a.Reason != nil {
		fmt.Fprintf(b, "why: %s: %s\n", a.Reason.Kind, a.Reason.Detail)
	}
	fmt.Fprintf(b, "reference server's verdict on the same attempts (as one list, the way it judges them): %s, backoff_ms %v\n",
		passFail(a.MergedReferencePassed), a.ReferenceBackoffMs)
}

// writeSeries writes one series: its gaps and summary.
func writeSeries(b *strings.Builder, i int, s Series) {
	fmt.Fprintf(b, "\nseries %d: %s, %s, %s\n", i+1, addrString(s.Dst), svgplot.Plural(len(s.Attempts), "attempt"), svgplot.Plural(len(s.Gaps), "gap"))
	if len(s.Gaps) > 0 {
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "gap\tat ms\tgot ms\texpected ms\tallowed ms\tdeviation\tverdict\t")
		for _, g := range s.Gaps {
			fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.1f\t%.1f..%.1f\t%+.1f%%\t%s\t\n",
				g.Index, millis(g.At), millis(g.Got), millis(g.Expected), millis(g.Lo), millis(g.Hi), 100*g.Deviation(), g.Verdict)
		}
		tw.Flush()
	}
	fmt.Fprintf(b, "  verdict: %s (reference rule on this address alone: %s)\n", passFail(s.Passed), passFail(s.ReferencePassed))
	switch f := s.Fit; {
	case f.Multiplier > 0 && f.DoF > 0:
		fmt.Fprintf(b, "  fitted multiplier: %.3f ± %.3f from %d gaps before the cap (± standard error from the residuals; fitted initial %s)\n",
			f.Multiplier, f.Multiplier*f.StdErr, f.Points, formatMs(f.Initial))
	case f.Multiplier > 0:
		fmt.Fprintf(b, "  fitted multiplier: %.3f from %d gaps before the cap (fitted initial %s); standard error unknown: %s\n",
			f.Multiplier, f.Points, formatMs(f.Initial), f.stdErrMissing())
	default:
		fmt.Fprintf(b, "  fitted multiplier: none (%d gaps before the cap, 3 needed)\n", f.Points)
	}
	switch j := s.Jitter; {
	case j.DoF > 0:
		fmt.Fprintf(b, "  jitter over %d gaps: mean %+.1f%% ± %.1f%%, std dev %.1f%% ± %.1f%% (uniform jitter: %.1f%%), min %+.1f%%, max %+.1f%%\n",
			j.Gaps, 100*j.Mean, 100*j.MeanStdErr, 100*j.StdDev, 100*j.StdDevStdErr, 100*j.Uniform, 100*j.Min, 100*j.Max)
	case j.Gaps > 0:
		fmt.Fprintf(b, "  jitter over %s: min %+.1f%%, max %+.1f%%; mean and std dev unknown: %s\n",
			svgplot.Plural(j.Gaps, "gap"), 100*j.Min, 100*j.Max, j.missing())
	}
	writeDeviationList(b, "  ", s.Deviations)
}

// writeRemoved lists the attempts left out.
func (a Analysis) writeRemoved(b *strings.Builder) {
	if len(a.Removed) == 0 {
		return
	}
	fmt.Fprintf(b, "\nremoved attempts:\n")
	for _, r := range a.Removed {
		fmt.Fprintf(b, "  at %.1f ms  %s -> %s  %s: %s\n",
			millis(r.At), addrString(r.Attempt.Src), addrString(r.Attempt.Dst), r.Reason, r.Detail)
	}
}

// writeDeviations writes the deviations of the attempts as a whole.
func (a Analysis) writeDeviations(b *strings.Builder) {
	if len(a.Deviations) == 0 {
		return
	}
	fmt.Fprintf(b, "\n")
	writeDeviationList(b, "", a.Deviations)
}

// writeDeviationList writes deviations, each with its detail and meaning.
func writeDeviationList(b *strings.Builder, indent string, ds []Deviation) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintf(b, "%sdeviations:\n", indent)
	for _, d := range ds {
		fmt.Fprintf(b, "%s  %s: %s.\n%s    %s\n", indent, d.Kind, d.Detail, indent, d.Meaning)
	}
}

// passFail prints a verdict.
func passFail(ok bool) string {
	if ok {
		return "passed"
	}
	return "failed"
}
