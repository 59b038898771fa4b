package backoff

import (
	"math"
	"testing"
	"time"
)

// ms builds durations from milliseconds.
func ms(v ...float64) []time.Duration {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x * float64(time.Millisecond))
	}
	return d
}

func TestReference(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name string
		max  time.Duration
		gaps []time.Duration
		want bool
	}{
		{"no gaps pass", 0, nil, true},
		{"empty passes", 3 * s, []time.Duration{}, true},
		{"exact", 0, ms(1000, 1600, 2560, 4096), true},
		{"first gap lower edge", 0, ms(700), true},
		{"first gap below", 0, ms(699.999), false},
		{"first gap upper edge", 0, ms(1300), true},
		{"truncated to the ms", 0, ms(1300.999), true},
		{"first gap above", 0, ms(1301), false},
		{"second gap lower edge", 0, ms(1000, 1180), true},
		{"second gap upper edge", 0, ms(1000, 2020), true},
		{"second gap below", 0, ms(1000, 1179), false},
		{"second gap above", 0, ms(1000, 2021), false},
		{"one bad gap fails all", 0, ms(1000, 1600, 9000, 4096), false},
		{"3 s cap", 3 * s, ms(1000, 1600, 2560, 3000, 3000, 3000), true},
		{"0 means 120 s", 0, ms(1000, 1600, 2560, 3000), false},
		{"under 1 ms means 120 s", 999 * time.Microsecond, ms(1000, 1600, 2560, 3000), false},
		{"120 s cap", 0, ms(1000, 1600, 2560, 4096, 6553.6, 10485.76, 16777.216, 26843.5456, 42949.67296, 68719.476736, 109951.1627776, 120000, 120000), true},
		{"cap upper edge", 0, ms(1000, 1600, 2560, 4096, 6553.6, 10485.76, 16777.216, 26843.5456, 42949.67296, 68719.476736, 109951.1627776, 144100), true},
		{"cap exceeded", 0, ms(1000, 1600, 2560, 4096, 6553.6, 10485.76, 16777.216, 26843.5456, 42949.67296, 68719.476736, 109951.1627776, 144101), false},
		{"first gap not capped", 500 * time.Millisecond, ms(1000, 500), true},
		{"first gap against 1000 even with a smaller cap", 500 * time.Millisecond, ms(500), false},
		{"negative gap", 0, ms(-1000), false},
		{"negative cap fails everything after the first", -3 * s, ms(1000, 1600), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reference(tc.max, tc.gaps); got != tc.want {
				t.Errorf("Reference(%v, %v) = %v, want %v", tc.max, tc.gaps, got, tc.want)
			}
		})
	}
}

func TestReferenceMillis(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int32
	}{
		{0, 0},
		{time.Millisecond - 1, 0},
		{1999 * time.Microsecond, 1},
		{-1, -1},
		{-time.Millisecond, -1},
		{-1500 * time.Microsecond, -2},
		{2147483*time.Second + 647*time.Millisecond, 2147483647},
		{2147483*time.Second + 648*time.Millisecond, math.MaxInt32},
		{3000000 * time.Second, math.MaxInt32},
		{-2147482 * time.Second, -2147482000},
		{-2147483 * time.Second, -math.MaxInt32},
		{math.MinInt64, -math.MaxInt32},
		{math.MaxInt64, math.MaxInt32},
	} {
		if got := referenceMillis(tc.d); got != tc.want {
			t.Errorf("referenceMillis(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestRangeAgreesWithReference checks that a series' Passed, computed from
// Policy.Range, always equals the reference verdict for the default
// parameters, including on gaps that land on the edges.
func TestRangeAgreesWithReference(t *testing.T) {
	r := seeded(3)
	for _, max := range []time.Duration{3 * time.Second, 120 * time.Second} {
		p := Default()
		p.Max = max
		for i := range 3000 {
			n := 1 + r.IntN(14)
			gs := make([]time.Duration, n)
			for k := range gs {
				lo, hi := p.Range(k)
				switch i % 3 {
				case 0: // anywhere near the range
					gs[k] = lo - 200*time.Millisecond + time.Duration(r.Int64N(int64(hi-lo+400*time.Millisecond)))
				case 1: // on an edge, to the millisecond
					edge := []time.Duration{lo, hi}[r.IntN(2)]
					gs[k] = edge.Truncate(time.Millisecond) + time.Duration(r.IntN(3)-1)*time.Millisecond
				default: // inside
					gs[k] = lo + time.Duration(r.Int64N(int64(hi-lo)))
				}
			}
			a := Analyze(attemptsAt(t0, gs, client4, server4, 0, r), p, Options{})
			s, _ := a.Primary()
			want := Reference(max, gs)
			judged := want && len(gs) >= DefaultMinGaps // fewer gaps are TooFewAttempts
			if s.Passed != judged || s.ReferencePassed != want || a.Passed != judged || a.MergedReferencePassed != want {
				t.Fatalf("gaps %v max %v: Passed %v, ReferencePassed %v, Analysis.Passed %v, Reference %v",
					gs, max, s.Passed, s.ReferencePassed, a.Passed, want)
			}
		}
	}
}
