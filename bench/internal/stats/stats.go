// Package stats holds the bench's distributions: a Summary of durations in
// microseconds (what every row of every report carries), the nearest-rank
// percentile, and the unit conversions and formatting the reports share.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary is the distribution of a set of durations, in microseconds so
// that the JSON file and the report read the same.
type Summary struct {
	N      int     `json:"n"`
	MinUS  float64 `json:"min_us"`
	MeanUS float64 `json:"mean_us"`
	P50US  float64 `json:"p50_us"`
	P99US  float64 `json:"p99_us"`
	MaxUS  float64 `json:"max_us"`
}

// Summarize returns the distribution of ds; the zero Summary for none.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += US(d)
	}
	return Summary{
		N:      len(s),
		MinUS:  US(s[0]),
		MeanUS: Round3(sum / float64(len(s))),
		P50US:  US(Percentile(s, 50)),
		P99US:  US(Percentile(s, 99)),
		MaxUS:  US(s[len(s)-1]),
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It is always one of the values, so a p99 of fewer than 100
// values is the maximum. It returns 0 for no values and the minimum for
// p <= 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// US is d in microseconds, to the nanosecond.
func US(d time.Duration) float64 { return Round3(float64(d) / float64(time.Microsecond)) }

// Round3 rounds x to three decimals.
func Round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// SamplesUS converts ds to microseconds, for the JSON file and the plot.
func SamplesUS(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = US(d)
	}
	return out
}

// MB is b bytes in MiB, to a tenth.
func MB(b uint64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// Median returns the median of xs (the lower middle one for an even count),
// 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
