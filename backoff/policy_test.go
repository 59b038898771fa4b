package backoff

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	want := Policy{Initial: time.Second, Multiplier: 1.6, Jitter: 0.2, Max: 120 * time.Second, MinConnectTimeout: 20 * time.Second}
	if got := Default(); got != want {
		t.Fatalf("Default() = %+v, want %+v", got, want)
	}
}

func TestExpected(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		n    int
		want time.Duration
	}{
		{Default(), 0, time.Second},
		{Default(), 1, 1600 * time.Millisecond},
		{Default(), 2, 2560 * time.Millisecond},
		{Default(), 5, 10485760 * time.Microsecond},
		{Default(), 10, 109951162778 * time.Nanosecond},
		{Default(), 11, 120 * time.Second},
		{Default(), 1000, 120 * time.Second},
		{with(1.6, 3*time.Second), 2, 2560 * time.Millisecond},
		{with(1.6, 3*time.Second), 3, 3 * time.Second},
		{with(2, 0), 20, 1 << 20 * time.Second}, // no cap
		// The first backoff is INITIAL_BACKOFF even above the cap, as in the
		// spec and the reference server; the next one is capped.
		{with(1.6, 500*time.Millisecond), 0, time.Second},
		{with(1.6, 500*time.Millisecond), 1, 500 * time.Millisecond},
	} {
		if got := tc.p.Expected(tc.n); got != tc.want {
			t.Errorf("%+v.Expected(%d) = %v, want %v", tc.p, tc.n, got, tc.want)
		}
	}
}

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		n      int
		lo, hi time.Duration
	}{
		{0, 700 * time.Millisecond, 1300 * time.Millisecond},
		{1, 1180 * time.Millisecond, 2020 * time.Millisecond},
		{2, 1948 * time.Millisecond, 3172 * time.Millisecond},
		{11, 95900 * time.Millisecond, 144100 * time.Millisecond},
	} {
		lo, hi := Default().Range(tc.n)
		if d := lo - tc.lo; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Range(%d) lo = %v, want %v", tc.n, lo, tc.lo)
		}
		if d := hi - tc.hi; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Range(%d) hi = %v, want %v", tc.n, hi, tc.hi)
		}
	}
}

func TestDelay(t *testing.T) {
	p := Default()
	r := seeded(1)
	for n := range 14 {
		e := float64(p.Expected(n))
		var sum float64
		const draws = 2000
		for range draws {
			d := p.Delay(n, r)
			if n == 0 && d != p.Initial {
				t.Fatalf("Delay(0) = %v, want the un-jittered %v", d, p.Initial)
			}
			if f := float64(d) / e; f < 0.8-1e-9 || f > 1.2+1e-9 {
				t.Fatalf("Delay(%d) = %v, outside ±20%% of %v", n, d, p.Expected(n))
			}
			sum += float64(d)
		}
		if mean := sum / draws / e; math.Abs(mean-1) > 0.01 {
			t.Errorf("Delay(%d) mean is %.4f of expected, want 1±0.01", n, mean)
		}
	}
	if d := p.Delay(3, nil); d < time.Duration(0.8*float64(p.Expected(3))) {
		t.Errorf("Delay(3, nil) = %v", d)
	}
}

func TestDelaySpread(t *testing.T) {
	// The draws must fill the band, not sit at its middle.
	p := Default()
	r := seeded(2)
	lo, hi := 1.0, 1.0
	for range 5000 {
		f := float64(p.Delay(4, r)) / float64(p.Expected(4))
		lo, hi = min(lo, f), max(hi, f)
	}
	if lo > 0.805 || hi < 1.195 {
		t.Errorf("Delay factors span %.3f..%.3f, want about 0.8..1.2", lo, hi)
	}
}

func TestPolicyJSON(t *testing.T) {
	b, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"initial_ms":1000,"multiplier":1.6,"jitter":0.2,"max_ms":120000,"min_connect_timeout_ms":20000}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var p Policy
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p != Default() {
		t.Errorf("round trip = %+v", p)
	}
	if err := json.Unmarshal([]byte(`{"initial_ms":"x"}`), &p); err == nil {
		t.Error("Unmarshal accepted a string for initial_ms")
	}
}

// TestPolicyAgreesWithReferenceBelowOneSecondCap checks that the analysis and
// the reference verdict agree when the cap is under the initial backoff.
func TestPolicyAgreesWithReferenceBelowOneSecondCap(t *testing.T) {
	p := with(1.6, 500*time.Millisecond)
	for _, gaps := range [][]time.Duration{
		{time.Second, 500 * time.Millisecond, 500 * time.Millisecond},
		{500 * time.Millisecond, 500 * time.Millisecond},
	} {
		var pass = true
		for i, g := range gaps {
			lo, hi := p.Range(i)
			pass = pass && g >= lo && g <= hi
		}
		if ref := Reference(p.Max, gaps); pass != ref {
			t.Errorf("gaps %v: Range says %v, Reference says %v", gaps, pass, ref)
		}
	}
}
