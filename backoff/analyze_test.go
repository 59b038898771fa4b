package backoff

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// tally counts what Analyze says of a simulated client over many seeds.
type tally struct {
	seeds, passed, clean int
	kinds                map[Kind]int
}

// judgeSeeds simulates a client over many seeds, with timestamps moved by
// ±noise, and counts what Analyze says.
func judgeSeeds(c model, p Policy, run, noise time.Duration, seeds int) tally {
	tl := tally{seeds: seeds, kinds: map[Kind]int{}}
	for seed := range seeds {
		r := seeded(uint64(seed))
		a := Analyze(attemptsAt(t0, c(run, r), client4, server4, noise, r), p, Options{})
		if a.Passed {
			tl.passed++
		}
		s, _ := a.Primary()
		if len(s.Deviations) == 0 && len(a.Deviations) == 0 {
			tl.clean++
		}
		for _, d := range s.Deviations {
			tl.kinds[d.Kind]++
		}
	}
	return tl
}

func TestSimulatedClients(t *testing.T) {
	const (
		s     = time.Second
		noise = 5 * time.Millisecond
		seeds = 100
	)
	for _, tc := range []struct {
		name             string
		client           model
		policy           Policy
		run              time.Duration
		minPass, maxPass int    // seeds passing the reference rule
		minClean         int    // seeds without any deviation
		want             Kind   // a deviation to expect
		minWant          int    // in at least this many seeds
		others           int    // at most this many of any other kind
		only             []Kind // other kinds allowed beyond others
	}{
		{name: "conformant 540 s", client: conformant(Default()), policy: Default(), run: 540 * s,
			minPass: 100, maxPass: 100, minClean: 98, others: 2},
		{name: "conformant 20 s, 3 s cap", client: conformant(with(1.6, 3*s)), policy: with(1.6, 3*s), run: 20 * s,
			minPass: 100, maxPass: 100, minClean: 98, others: 2},
		{name: "no jitter", client: unjittered(Default()), policy: Default(), run: 540 * s,
			minPass: 100, maxPass: 100, want: NoJitter, minWant: 100},
		{name: "no jitter 20 s", client: unjittered(with(1.6, 3*s)), policy: with(1.6, 3*s), run: 20 * s,
			minPass: 100, maxPass: 100, want: NoJitter, minWant: 100},
		// A busy machine: a 2.56 s timer was seen to fire 45 ms late. Later
		// gaps still read as unjittered; one late first gap cannot be told
		// from a jittered one, so JitteredFirstGap may come too.
		{name: "no jitter, timers up to 50 ms late, 20 s", client: lateTimers(with(1.6, 3*s), 50*time.Millisecond), policy: with(1.6, 3*s), run: 20 * s,
			minPass: 100, maxPass: 100, want: NoJitter, minWant: 95, only: []Kind{JitteredFirstGap}},
		{name: "compounding jitter", client: compounder(Default()), policy: Default(), run: 540 * s,
			minPass: 3, maxPass: 30, want: CompoundingJitter, minWant: 75, others: 10},
		{name: "multiplier 2", client: conformant(with(2, 120*s)), policy: Default(), run: 540 * s,
			want: WrongMultiplier, minWant: 100, only: []Kind{CapNotHonoured}},
		{name: "constant 1 s gaps", client: constant(s), policy: Default(), run: 540 * s,
			want: WrongMultiplier, minWant: 100, only: []Kind{NoJitter}},
		{name: "constant 1 s gaps, 20 s", client: constant(s), policy: with(1.6, 3*s), run: 20 * s,
			want: WrongMultiplier, minWant: 100, only: []Kind{NoJitter}},
		// Over 540 s the one gap past the cap can still land in range.
		{name: "cap ignored", client: conformant(with(1.6, 0)), policy: Default(), run: 540 * s,
			maxPass: 6, minClean: 0, want: CapNotHonoured, minWant: 94},
		{name: "cap ignored, 900 s", client: conformant(with(1.6, 0)), policy: Default(), run: 900 * s,
			want: CapNotHonoured, minWant: 100},
		{name: "cap ignored, 20 s", client: conformant(with(1.6, 0)), policy: with(1.6, 3*s), run: 20 * s,
			want: CapNotHonoured, minWant: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := judgeSeeds(tc.client, tc.policy, tc.run, noise, seeds)
			t.Logf("passed %d, clean %d, deviations %v", tl.passed, tl.clean, tl.kinds)
			if tl.passed < tc.minPass || tl.passed > tc.maxPass {
				t.Errorf("%d of %d seeds pass the reference rule, want %d to %d", tl.passed, seeds, tc.minPass, tc.maxPass)
			}
			if tl.clean < tc.minClean {
				t.Errorf("%d of %d seeds show no deviation, want at least %d", tl.clean, seeds, tc.minClean)
			}
			if tc.want != "" && tl.kinds[tc.want] < tc.minWant {
				t.Errorf("%s in %d of %d seeds, want at least %d", tc.want, tl.kinds[tc.want], seeds, tc.minWant)
			}
			for k, n := range tl.kinds {
				if k != tc.want && !slices.Contains(tc.only, k) && n > tc.others {
					t.Errorf("%s in %d of %d seeds, want at most %d", k, n, seeds, tc.others)
				}
			}
		})
	}
}

// TestCompoundingPassRate measures how often the reference rule passes the
// client whose jitter compounds: about 84% at a 3 s cap over 20 s and 13% at
// the 120 s cap over 540 s, as measured on real clients.
func TestCompoundingPassRate(t *testing.T) {
	const seeds = 2000
	for _, tc := range []struct {
		name   string
		max    time.Duration
		run    time.Duration
		lo, hi float64
	}{
		{"3 s cap over 20 s", 3 * time.Second, 20 * time.Second, 0.78, 0.90},
		{"120 s cap over 540 s", 120 * time.Second, 540 * time.Second, 0.09, 0.17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := with(1.6, tc.max)
			comp := judgeSeeds(compounder(p), p, tc.run, 0, seeds)
			spec := judgeSeeds(conformant(p), p, tc.run, 0, seeds)
			rate := float64(comp.passed) / seeds
			t.Logf("compounding passes %.1f%%, flagged CompoundingJitter %.1f%%; conformant passes %.1f%%",
				100*rate, 100*float64(comp.kinds[CompoundingJitter])/seeds, 100*float64(spec.passed)/seeds)
			if rate < tc.lo || rate > tc.hi {
				t.Errorf("compounding client passes %.1f%%, want %.0f%% to %.0f%%", 100*rate, 100*tc.lo, 100*tc.hi)
			}
			if spec.passed != seeds {
				t.Errorf("conformant client passes %d of %d", spec.passed, seeds)
			}
		})
	}
}

// TestCompoundingHitRate measures CompoundingJitter's hit rate on a 540 s run
// at the 120 s cap, and its false alarm rate on conformant clients.
func TestCompoundingHitRate(t *testing.T) {
	const seeds = 1000
	p := Default()
	comp := judgeSeeds(compounder(p), p, 540*time.Second, 5*time.Millisecond, seeds)
	spec := judgeSeeds(conformant(p), p, 540*time.Second, 5*time.Millisecond, seeds)
	hit := float64(comp.kinds[CompoundingJitter]) / seeds
	alarm := float64(spec.kinds[CompoundingJitter]) / seeds
	t.Logf("CompoundingJitter: hit rate %.1f%%, false alarms %.1f%%", 100*hit, 100*alarm)
	if hit < 0.75 {
		t.Errorf("hit rate %.1f%%, want at least 75%%", 100*hit)
	}
	if alarm > 0.01 {
		t.Errorf("false alarm rate %.1f%%, want at most 1%%", 100*alarm)
	}
}

func TestInterleavedAddresses(t *testing.T) {
	// A client that resolves localhost to ::1 and 127.0.0.1 tries both on
	// every retry, each with its own backoff.
	p := Default()
	for seed := range uint64(20) {
		r := seeded(seed)
		v6 := attemptsAt(t0, conformant(p)(540*time.Second, r), client6, server6, 0, r)
		v4 := attemptsAt(t0.Add(time.Millisecond), conformant(p)(540*time.Second, r), client4, server4, 0, r)
		a := Analyze(append(v4, v6...), p, Loopback())
		if len(a.Series) != 2 {
			t.Fatalf("seed %d: %d series, want 2", seed, len(a.Series))
		}
		for i, want := range []netip.AddrPort{server6, server4} {
			s := a.Series[i]
			if s.Dst != want || !s.Passed || len(s.Deviations) != 0 {
				t.Errorf("seed %d: series %d to %s passed %v with %v, want %s passing without deviations",
					seed, i, s.Dst, s.Passed, s.Deviations, want)
			}
		}
		if !a.Passed {
			t.Errorf("seed %d: analysis failed, want passed", seed)
		}
		if a.MergedReferencePassed {
			t.Errorf("seed %d: the reference rule passes the merged list", seed)
		}
		if !a.Has(InterleavedAddresses) || !strings.Contains(a.Deviations[0].Detail, "IPv4 and IPv6") {
			t.Errorf("seed %d: deviations %v, want InterleavedAddresses of IPv4 and IPv6", seed, a.Deviations)
		}
		if s, ok := a.Primary(); !ok || s.Dst != server6 {
			t.Errorf("seed %d: primary series %v, want the first address tried, %v", seed, s.Dst, server6)
		}
	}
}

func TestSequentialAddressesAreNotInterleaved(t *testing.T) {
	p := with(1.6, 3*time.Second)
	r := seeded(1)
	first := attemptsAt(t0, conformant(p)(20*time.Second, r), client4, server4, 0, r)
	second := attemptsAt(t0.Add(time.Minute), conformant(p)(20*time.Second, r), client6, server6, 0, r)
	a := Analyze(append(second, first...), p, Options{})
	if len(a.Series) != 2 || a.Series[0].Dst != server4 {
		t.Fatalf("series %+v", a.Series)
	}
	if a.Has(InterleavedAddresses) {
		t.Errorf("one address after the other flagged %v", a.Deviations)
	}
}

func TestRemoved(t *testing.T) {
	p := Default()
	gs := ms(1000, 1700, 2300, 4400, 6100)
	attempts := attemptsAt(t0, gs, client4, server4, 0, seeded(1))
	// The kernel retransmits the second SYN after 1 s and 3 s.
	retx := attempts[1]
	retx.Time = retx.Time.Add(time.Second)
	retx2 := retx
	retx2.Time = retx2.Time.Add(2 * time.Second)
	// Same source port, new ISN: a new attempt, not a retransmission.
	again := attempts[4]
	again.Time, again.ISN = attempts[5].Time.Add(10*time.Second), again.ISN+1
	// Without an ISN nothing can be called a retransmission.
	noISN := Attempt{Time: again.Time.Add(20 * time.Second), Src: client4, Dst: server4}
	foreign := Attempt{Time: t0.Add(500 * time.Millisecond), Src: stranger, Dst: server4, ISN: 7, HasISN: true}
	mapped := Attempt{Time: t0.Add(1500 * time.Millisecond), Src: netip.MustParseAddrPort("[::ffff:10.1.2.3]:1"), Dst: server4}
	in := append(slices.Clone(attempts), retx2, foreign, retx, mapped)

	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"loopback", Loopback()},
		{"client list", Options{Clients: []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}}},
		{"func", Options{Accept: func(a netip.Addr) bool { return a == client4.Addr() }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Analyze(in, p, tc.opt)
			var reasons []string
			for _, r := range a.Removed {
				reasons = append(reasons, fmt.Sprintf("%s@%.0f", r.Reason, millis(r.At)))
			}
			want := []string{"foreign source@500", "retransmission@2000", "foreign source@1500", "retransmission@4000"}
			slices.Sort(want)
			slices.Sort(reasons)
			if !slices.Equal(reasons, want) {
				t.Errorf("removed %v, want %v", reasons, want)
			}
			s, _ := a.Primary()
			if len(a.Series) != 1 || len(s.Attempts) != len(attempts) || !a.Passed || len(s.Deviations) != 0 {
				t.Errorf("series %d, attempts %d, passed %v, deviations %v; want 1 series of %d passing attempts",
					len(a.Series), len(s.Attempts), a.Passed, s.Deviations, len(attempts))
			}
			b := Analyze(append(slices.Clone(in), again, noISN), p, tc.opt)
			if bs, _ := b.Primary(); len(bs.Attempts) != len(attempts)+2 {
				t.Errorf("with a new ISN and a missing ISN: %d attempts kept, want %d", len(bs.Attempts), len(attempts)+2)
			}
		})
	}
	// The zero Options accept everyone: the foreign SYNs then break the series.
	a := Analyze(in, p, Options{})
	if len(a.Removed) != 2 || a.Passed {
		t.Errorf("zero Options: removed %v, passed %v; want 2 retransmissions removed and a failure", a.Removed, a.Passed)
	}
}

func TestLoopback(t *testing.T) {
	o := Loopback()
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "::ffff:127.0.0.1": true,
		"10.0.0.1": false, "::2": false, "192.168.1.1": false,
	} {
		if got := o.accepts(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Loopback accepts %s = %v, want %v", addr, got, want)
		}
	}
	if o.accepts(netip.Addr{}) {
		t.Error("Loopback accepts an unknown address")
	}
	if !(Options{}).accepts(netip.Addr{}) {
		t.Error("zero Options reject an unknown address")
	}
}

func TestOrderDoesNotMatter(t *testing.T) {
	r := seeded(9)
	p := Default()
	in := attemptsAt(t0, conformant(p)(540*time.Second, r), client4, server4, 5*time.Millisecond, r)
	want := Analyze(in, p, Options{})
	shuffled := slices.Clone(in)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	before := slices.Clone(shuffled)
	got := Analyze(shuffled, p, Options{})
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	if string(wj) != string(gj) {
		t.Errorf("shuffled input gives a different analysis:\n%s\n%s", gj, wj)
	}
	if !slices.Equal(before, shuffled) {
		t.Error("Analyze changed its input")
	}
}

func TestFewAttempts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []Attempt
		series   int
		passed   bool
		tooFew   bool
		backoffs []int32
	}{
		{"none", nil, 0, false, false, nil},
		{"only foreign", []Attempt{{Time: t0, Src: stranger, Dst: server4}}, 0, false, false, nil},
		{"one", attemptsAt(t0, nil, client4, server4, 0, seeded(1)), 1, false, true, []int32{}},
		{"two", attemptsAt(t0, ms(1000.7), client4, server4, 0, seeded(1)), 1, false, true, []int32{1000}},
		{"three", attemptsAt(t0, ms(1000, 1600), client4, server4, 0, seeded(1)), 1, true, false, []int32{1000, 1600}},
		{"four", attemptsAt(t0, ms(1000, 1600, 2200), client4, server4, 0, seeded(1)), 1, true, false, []int32{1000, 1600, 2200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := Loopback()
			opt.Observed = 20 * time.Second
			a := Analyze(tc.in, Policy{}, opt)
			if len(a.Series) != tc.series || a.Passed != tc.passed || a.Has(TooFewAttempts) != tc.tooFew {
				t.Errorf("series %d, passed %v, TooFewAttempts %v; want %d, %v, %v",
					len(a.Series), a.Passed, a.Has(TooFewAttempts), tc.series, tc.passed, tc.tooFew)
			}
			// Without enough attempts the reason says so, and the reference's
			// own verdict (which passes any client that never retried) is
			// given beside it.
			if !tc.passed {
				kept := 0
				if tc.series > 0 {
					kept = len(a.Series[0].Attempts)
				}
				want := fmt.Sprintf("the client made %d attempt", kept)
				if a.Reason == nil || a.Reason.Kind != TooFewAttempts || !strings.HasPrefix(a.Reason.Detail, want) ||
					!strings.Contains(a.Reason.Detail, "in 20.0 s; it stopped retrying or never started") {
					t.Errorf("reason %+v, want TooFewAttempts starting %q", a.Reason, want)
				}
				if !a.MergedReferencePassed {
					t.Error("reference verdict failed, want passed: the reference server passes a client without gaps")
				}
				var b strings.Builder
				if err := a.WriteText(&b); err != nil {
					t.Fatal(err)
				}
				for _, line := range []string{"backoff: FAILED", "why: TooFewAttempts: " + a.Reason.Detail,
					"reference server's verdict on the same attempts (as one list, the way it judges them): " + passFail(a.MergedReferencePassed)} {
					if !strings.Contains(b.String(), line) {
						t.Errorf("report lacks %q:\n%s", line, b.String())
					}
				}
			} else if a.Reason != nil {
				t.Errorf("passed with reason %+v", a.Reason)
			}
			s, ok := a.Primary()
			if ok != (tc.series > 0) || !slices.Equal(s.BackoffMs(), tc.backoffs) {
				t.Errorf("Primary() = %v, %v; want backoffs %v", s.BackoffMs(), ok, tc.backoffs)
			}
			if a.Policy != Default() {
				t.Errorf("zero Policy became %+v, want Default()", a.Policy)
			}
		})
	}
}

func TestFirstGap(t *testing.T) {
	rest := []float64{1650, 2400, 4500, 6000, 10000}
	for _, tc := range []struct {
		first float64
		want  Kind
	}{
		{1000, ""},
		{1009, ""},
		{1060, JitteredFirstGap},
		{870, JitteredFirstGap},
		{600, WrongInitial},
		{1400, WrongInitial},
	} {
		a := Analyze(attemptsAt(t0, ms(append([]float64{tc.first}, rest...)...), client4, server4, 0, seeded(1)), Default(), Options{})
		s, _ := a.Primary()
		var got Kind
		if len(s.Deviations) > 0 {
			got = s.Deviations[0].Kind
		}
		if got != tc.want || len(s.Deviations) > 1 {
			t.Errorf("first gap %v ms: deviations %v, want %q", tc.first, s.Deviations, tc.want)
		}
	}
}

func TestFitAndSpread(t *testing.T) {
	// Gaps exactly Initial·2^n: the fit must find 2 and initial 1 s.
	p := with(2, 0)
	var gs []time.Duration
	for n := range 8 {
		gs = append(gs, p.Expected(n))
	}
	a := Analyze(attemptsAt(t0, gs, client4, server4, 0, seeded(1)), Default(), Options{})
	s, _ := a.Primary()
	if s.Fit.Multiplier < 1.9999 || s.Fit.Multiplier > 2.0001 || s.Fit.Initial != time.Second {
		t.Errorf("fit = %+v, want multiplier 2, initial 1s", s.Fit)
	}
	// Gaps past 10 (110 s expected) are at or near the cap and are not fitted.
	if s.Fit.Points != 7 {
		t.Errorf("fit used %d gaps, want 7 (gap 7, 128 s, already looks capped)", s.Fit.Points)
	}

	// Jitter spread of known deviations.
	d := Default()
	devs := []float64{0, 0.1, -0.2, 0.05, 0.2}
	gs = nil
	for n, f := range devs {
		gs = append(gs, time.Duration(float64(d.Expected(n))*(1+f)))
	}
	a = Analyze(attemptsAt(t0, gs, client4, server4, 0, seeded(1)), d, Options{})
	s, _ = a.Primary()
	j := s.Jitter
	if j.Gaps != 4 || !near(j.Min, -0.2, 1e-6) || !near(j.Max, 0.2, 1e-6) || !near(j.StdDev, 0.17017, 1e-5) || !near(j.Uniform, 0.11547, 1e-5) {
		t.Errorf("spread = %+v, want 4 gaps, -0.2..0.2, std dev 0.1702, uniform 0.1155", j)
	}
}

func near(x, y, eps float64) bool { return x-y <= eps && y-x <= eps }

func TestJSON(t *testing.T) {
	in := attemptsAt(t0, ms(1000, 1700, 2300), client4, server4, 0, seeded(1))
	in = append(in, Attempt{Time: t0.Add(200 * time.Millisecond), Src: stranger, Dst: server4})
	opt := Loopback()
	opt.MinGaps = 4
	b, err := json.Marshal(Analyze(in, Default(), opt))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Passed bool `json:"passed"`
		Reason struct {
			Kind string `json:"kind"`
		} `json:"reason"`
		ReferencePassed    bool    `json:"reference_passed"`
		ReferenceBackoffMs []int32 `json:"reference_backoff_ms"`
		Policy             struct {
			MaxMs float64 `json:"max_ms"`
		} `json:"policy"`
		Series []struct {
			Dst  string `json:"dst"`
			Gaps []struct {
				Index      int     `json:"index"`
				AtMs       float64 `json:"at_ms"`
				GotMs      float64 `json:"got_ms"`
				ExpectedMs float64 `json:"expected_ms"`
				LoMs       float64 `json:"lo_ms"`
				HiMs       float64 `json:"hi_ms"`
				Verdict    string  `json:"verdict"`
			} `json:"gaps"`
			Fit struct {
				Multiplier float64 `json:"multiplier"`
				InitialMs  float64 `json:"initial_ms"`
			} `json:"fit"`
			Deviations []struct {
				Kind    string `json:"kind"`
				Meaning string `json:"meaning"`
			} `json:"deviations"`
		} `json:"series"`
		Removed []struct {
			AtMs   float64 `json:"at_ms"`
			Reason string  `json:"reason"`
		} `json:"removed"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	// Four gaps are asked for and three are there: not passed, with the
	// reference's verdict beside it.
	if v.Passed || v.Reason.Kind != string(TooFewAttempts) || !v.ReferencePassed || !slices.Equal(v.ReferenceBackoffMs, []int32{1000, 1700, 2300}) ||
		v.Policy.MaxMs != 120000 || len(v.Series) != 1 || v.Series[0].Dst != "127.0.0.1:8081" {
		t.Fatalf("json = %s", b)
	}
	g := v.Series[0].Gaps[1]
	if g.Index != 1 || g.AtMs != 2700 || g.GotMs != 1700 || g.ExpectedMs != 1600 || g.LoMs != 1180 || g.HiMs != 2020 || g.Verdict != "ok" {
		t.Errorf("gap 1 = %+v", g)
	}
	if f := v.Series[0].Fit; f.Multiplier < 1.4 || f.Multiplier > 1.8 || f.InitialMs < 900 || f.InitialMs > 1100 {
		t.Errorf("fit = %+v", f)
	}
	d := v.Series[0].Deviations
	if len(d) != 1 || d[0].Kind != string(TooFewAttempts) || d[0].Meaning == "" {
		t.Errorf("deviations = %+v", d)
	}
	if len(v.Removed) != 1 || v.Removed[0].AtMs != 200 || v.Removed[0].Reason != "foreign source" {
		t.Errorf("removed = %+v", v.Removed)
	}
}

func TestWriteText(t *testing.T) {
	r := seeded(4)
	p := Default()
	v6 := attemptsAt(t0, unjittered(p)(60*time.Second, r), client6, server6, 0, r)
	v4 := attemptsAt(t0.Add(2*time.Millisecond), conformant(p)(60*time.Second, r), client4, server4, 0, r)
	in := append(v6, v4...)
	retx := v4[2]
	retx.Time = retx.Time.Add(time.Second)
	in = append(in, retx)
	var b strings.Builder
	if err := Analyze(in, p, Loopback()).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"backoff: PASSED: 2 series, ",
		"reference server's verdict on the same attempts (as one list, the way it judges them): failed, backoff_ms [2 998 2 1598 ",
		"series 1: [::1]:8081, ",
		"series 2: 127.0.0.1:8081, ",
		"verdict: passed (reference rule on this address alone: passed)",
		"fitted multiplier: 1.600",
		"NoJitter: ",
		"retransmission: same source and ISN",
		"InterleavedAddresses: attempts to [::1]:8081 and 127.0.0.1:8081 alternate (IPv4 and IPv6)",
		InterleavedAddresses.Meaning(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	gapLine := "0 1002.0 1000.0 1000.0 700.0..1300.0 +0.0% ok"
	if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.Join(strings.Fields(l), " ") == gapLine }) {
		t.Errorf("report lacks a line %q", gapLine)
	}
	if t.Failed() || testing.Verbose() {
		t.Log("\n" + out)
	}
}

func TestWriteTextError(t *testing.T) {
	if err := Analyze(nil, Policy{}, Options{}).WriteText(failingWriter{}); err == nil {
		t.Error("WriteText hid the writer's error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

// TestJSONFarFuture checks that times past year 9999, which time.Time
// refuses to marshal, do not break the JSON.
func TestJSONFarFuture(t *testing.T) {
	far := time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)
	in := attemptsAt(far, ms(1000, 1600), client4, server4, 0, seeded(1))
	in = append(in, Attempt{Time: far, Src: stranger, Dst: server4})
	b, err := json.Marshal(Analyze(in, Default(), Loopback()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"start":"20000-01-01T00:00:00Z"`) || !strings.Contains(string(b), `"time":"20000-01-01T00:00:01Z"`) {
		t.Errorf("json = %s", b)
	}
	var back []Attempt
	b, _ = json.Marshal(in[:2])
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), "20000", "2000")), &back); err != nil || len(back) != 2 || back[1].Src != in[1].Src || !back[1].HasISN {
		t.Errorf("attempts do not read back: %v %+v", err, back)
	}
}
