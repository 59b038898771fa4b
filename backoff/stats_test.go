package backoff

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestErrorsFromTheData feeds a client without jitter and one with heavy
// jitter (±50%, judged against the default ±20% policy): the standard error
// of the multiplier and the jitter's spread must come from their gaps, near
// zero for the first and near the true sampling spread for the second,
// instead of one figure derived from the policy for both.
func TestErrorsFromTheData(t *testing.T) {
	p := Default()
	heavy := Default()
	heavy.Jitter = 0.5
	const seeds = 400
	var (
		lnM, se, sd []float64
		points      int
	)
	for seed := range uint64(seeds) {
		r := seeded(seed)
		a := Analyze(attemptsAt(t0, conformant(heavy)(540*time.Second, r), client4, server4, 0, r), p, Options{})
		s, _ := a.Primary()
		if s.Fit.DoF == 0 || s.Jitter.DoF == 0 {
			t.Fatalf("seed %d: no estimate from %d fitted and %d jittered gaps", seed, s.Fit.Points, s.Jitter.Gaps)
		}
		lnM = append(lnM, math.Log(s.Fit.Multiplier))
		se = append(se, s.Fit.StdErr)
		sd = append(sd, s.Jitter.StdDev)
		points = s.Fit.Points
	}
	// The spread of ln(multiplier) over the seeds is what the standard
	// error of one run estimates.
	truth := stdDev(lnM)
	medSE := median(se)
	t.Logf("heavy jitter: spread of ln(multiplier) over %d seeds %.4f, median standard error %.4f (%d points); median jitter std dev %.3f",
		seeds, truth, medSE, points, median(sd))
	if medSE < 0.7*truth || medSE > 1.3*truth {
		t.Errorf("median standard error %.4f, want within 30%% of the actual spread %.4f", medSE, truth)
	}
	// Uniform ±50% jitter has a standard deviation of 0.289, not the
	// policy's 0.115.
	if m := median(sd); m < 0.24 || m > 0.33 {
		t.Errorf("median jitter std dev %.3f, want about 0.289", m)
	}

	// Without jitter the gaps lie on the line: the error is ~0 (only the
	// whole-nanosecond rounding of the gaps remains).
	r := seeded(1)
	a := Analyze(attemptsAt(t0, unjittered(p)(540*time.Second, r), client4, server4, 0, r), p, Options{})
	s, _ := a.Primary()
	if s.Fit.DoF == 0 || s.Fit.StdErr > 1e-6 || s.Jitter.DoF == 0 || s.Jitter.StdDev > 1e-6 {
		t.Errorf("no jitter: fit %+v, jitter %+v; want standard errors of about 0", s.Fit, s.Jitter)
	}
	if medSE < 1e4*s.Fit.StdErr {
		t.Errorf("standard errors %.3g (no jitter) and %.3g (heavy jitter) do not differ as they must", s.Fit.StdErr, medSE)
	}
}

// TestTooFewForErrors checks that with too few gaps the errors are not
// numbers: the text says so, and the JSON has null with a reason.
func TestTooFewForErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gaps      []float64
		fitDoF    int
		jitterDoF int
		texts     []string
	}{
		{"two gaps", []float64{1000, 1700}, 0, 0, []string{
			"fitted multiplier: none (2 gaps before the cap, 3 needed)",
			"jitter over 1 gap: min +6.2%, max +6.2%; mean and std dev unknown: too few jittered gaps (after the first) to estimate the spread: 1, at least 3 needed"}},
		{"three gaps", []float64{1000, 1700, 2300}, 0, 0, []string{
			"standard error unknown: too few gaps before the cap to estimate it from the residuals: 3, at least 4 needed",
			"mean and std dev unknown: too few jittered gaps (after the first) to estimate the spread: 2, at least 3 needed"}},
		{"four gaps", []float64{1000, 1700, 2300, 4400}, 2, 2, []string{
			"fitted multiplier: 1.608 ± 0.072 from 4 gaps before the cap", // checked by hand
			"jitter over 3 gaps: mean +1.2% ± 5.7%, std dev 9.8% ± 4.9%"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Analyze(attemptsAt(t0, ms(tc.gaps...), client4, server4, 0, seeded(1)), Default(), Options{})
			s, _ := a.Primary()
			if s.Fit.DoF != tc.fitDoF || s.Jitter.DoF != tc.jitterDoF {
				t.Errorf("degrees of freedom: fit %d, jitter %d; want %d, %d", s.Fit.DoF, s.Jitter.DoF, tc.fitDoF, tc.jitterDoF)
			}
			var b strings.Builder
			if err := a.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.texts {
				if !strings.Contains(b.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, b.String())
				}
			}
			raw, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var v struct {
				Fit    map[string]any `json:"fit"`
				Jitter map[string]any `json:"jitter"`
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			_, fitNum := v.Fit["std_err"].(float64)
			_, sdNum := v.Jitter["std_dev"].(float64)
			_, meanErrNum := v.Jitter["mean_std_err"].(float64)
			if fitNum != (tc.fitDoF > 0) || sdNum != (tc.jitterDoF > 0) || meanErrNum != sdNum {
				t.Errorf("json fit %v, jitter %v: numbers where estimated, null elsewhere", v.Fit, v.Jitter)
			}
			if (v.Fit["std_err_unknown"] != nil) == fitNum || (v.Jitter["unknown"] != nil) == sdNum {
				t.Errorf("json fit %v, jitter %v: a reason exactly where a figure is missing", v.Fit, v.Jitter)
			}
		})
	}
}

func stdDev(xs []float64) float64 {
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
