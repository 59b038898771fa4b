package backoff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
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

// MarshalJSON writes f with its fitted initial gap as initial_ms.
func (f Fit) MarshalJSON() ([]byte, error) {
	type plain Fit
	return json.Marshal(struct {
		plain
		InitialMs float64 `json:"initial_ms"`
	}{plain(f), millis(f.Initial)})
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
	fmt.Fprintf(b, "backoff: %s: %d series, %d attempts kept, %d removed\n", verdict, len(a.Series), kept, len(a.Removed))
	p := a.Policy
	fmt.Fprintf(b, "policy: initial %s, multiplier %g, jitter %g, max %s, tolerance %s\n",
		formatMs(p.Initial), p.Multiplier, p.Jitter, formatMs(p.Max), formatMs(Tolerance))
	if len(a.Series) > 1 {
		fmt.Fprintf(b, "reference server on all attempts as one list: %s\n", passFail(a.MergedReferencePassed))
	}
}

// writeSeries writes one series: its gaps and summary.
func writeSeries(b *strings.Builder, i int, s Series) {
	fmt.Fprintf(b, "\nseries %d: %s, %d attempts, %d gaps\n", i+1, addrString(s.Dst), len(s.Attempts), len(s.Gaps))
	if len(s.Gaps) > 0 {
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "gap\tat ms\tgot ms\texpected ms\tallowed ms\tdeviation\tverdict\t")
		for _, g := range s.Gaps {
			fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.1f\t%.1f..%.1f\t%+.1f%%\t%s\t\n",
				g.Index, millis(g.At), millis(g.Got), millis(g.Expected), millis(g.Lo), millis(g.Hi), 100*g.Deviation(), g.Verdict)
		}
		tw.Flush()
	}
	fmt.Fprintf(b, "  verdict: %s (reference server: %s)\n", passFail(s.Passed), passFail(s.ReferencePassed))
	if s.Fit.Multiplier > 0 {
		fmt.Fprintf(b, "  fitted multiplier: %.3f ± %.3f from %d gaps before the cap (fitted initial %s)\n",
			s.Fit.Multiplier, s.Fit.Multiplier*s.Fit.StdErr, s.Fit.Points, formatMs(s.Fit.Initial))
	} else {
		fmt.Fprintf(b, "  fitted multiplier: none (%d gaps before the cap, 3 needed)\n", s.Fit.Points)
	}
	if j := s.Jitter; j.Gaps > 0 {
		fmt.Fprintf(b, "  jitter over %d gaps: min %+.1f%%, max %+.1f%%, std dev %.1f%% (uniform jitter: %.1f%%)\n",
			j.Gaps, 100*j.Min, 100*j.Max, 100*j.StdDev, 100*j.Uniform)
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
