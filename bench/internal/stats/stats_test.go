package stats

import (
	"testing"
	"time"
)

func durations(us ...float64) []time.Duration {
	out := make([]time.Duration, len(us))
	for i, u := range us {
		out[i] = time.Duration(u * float64(time.Microsecond))
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i))
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"p0 is the minimum", hundred, 0, 1},
		{"p50 of 100", hundred, 50, 50},
		{"p99 of 100", hundred, 99, 99},
		{"p100 of 100", hundred, 100, 100},
		{"p99 of 20 is the maximum", hundred[:20], 99, 20},
		{"p50 of 4 is the lower middle", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p50 of 5 is the middle", []time.Duration{1, 2, 3, 4, 5}, 50, 3},
		{"above 100 clamps", hundred, 150, 100},
	} {
		if got := Percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%g) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	if s := Summarize(nil); s != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want the zero Summary", s)
	}
	in := durations(30, 10, 20, 40, -5)
	s := Summarize(in)
	want := Summary{N: 5, MinUS: -5, MeanUS: 19, P50US: 20, P99US: 40, MaxUS: 40}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if in[0] != 30*time.Microsecond {
		t.Error("Summarize reordered its input")
	}
	if got := Summarize(durations(1.2345)).P50US; got != 1.235 && got != 1.234 {
		t.Errorf("P50US = %v, want microseconds to the nanosecond", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{4, 1, 3, 2}, 2}, {[]float64{5, 1, 3}, 3}} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFmtUS(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0, "0.0 µs"}, {5.25, "5.2 µs"}, {84.4, "84 µs"}, {-120, "-120 µs"}, {2500, "2.50 ms"}, {971260, "971.26 ms"}, {1.5e6, "1.500 s"}} {
		if got := FmtUS(tc.in); got != tc.want {
			t.Errorf("fmtUS(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
