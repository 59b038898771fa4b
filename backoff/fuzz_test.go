package backoff

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/svgplot/svgtest"
)

var (
	fuzzSrcs = []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("::ffff:127.0.0.1"), {}, netip.MustParseAddr("127.0.0.2"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("192.0.2.1"),
	}
	fuzzDsts = []netip.AddrPort{
		server4, server6, netip.MustParseAddrPort("[::ffff:127.0.0.1]:8081"), {},
		netip.MustParseAddrPort("127.0.0.1:9090"),
	}
)

// fuzzInput decodes data into options, a policy and attempts. The first byte
// chooses the options and policy; every following 7 bytes are an attempt:
// a time step (2 bytes, in units of 5 ms), a source, a destination, a 16-bit
// ISN and flags (has ISN, step backwards, repeat the time, huge step).
func fuzzInput(data []byte) (Options, Policy, []Attempt) {
	var opt Options
	p := Default()
	if len(data) > 0 {
		c := data[0]
		data = data[1:]
		if c&1 != 0 {
			opt = Loopback()
		}
		if c&2 != 0 {
			p.Max = 3 * time.Second
		}
		if c&4 != 0 {
			opt.MinGaps = int(c >> 4)
		}
		if c&8 != 0 {
			opt.Noise = time.Duration(c>>4) * time.Millisecond
		}
	}
	var in []Attempt
	t := t0
	for ; len(data) >= 7; data = data[7:] {
		step := time.Duration(binary.BigEndian.Uint16(data)) * 5 * time.Millisecond
		flags := data[6]
		if flags&8 != 0 {
			step *= 1 << 20
		}
		switch {
		case flags&4 != 0:
		case flags&2 != 0:
			t = t.Add(-step)
		default:
			t = t.Add(step)
		}
		src := fuzzSrcs[int(data[2])%len(fuzzSrcs)]
		var srcPort netip.AddrPort
		if src.IsValid() {
			srcPort = netip.AddrPortFrom(src, 40000+uint16(data[2]>>3))
		}
		in = append(in, Attempt{
			Time:   t,
			Src:    srcPort,
			Dst:    fuzzDsts[int(data[3])%len(fuzzDsts)],
			ISN:    uint32(binary.BigEndian.Uint16(data[4:])),
			HasISN: flags&1 != 0,
		})
	}
	return opt, p, in
}

func FuzzAnalyze(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 200, 0, 0, 0, 1, 1, 0, 200, 0, 0, 0, 2, 1})
	// A conformant 20 s run, and the same with a duplicate and a foreign SYN.
	run := []byte{3}
	for _, g := range []uint16{0, 200, 320, 512, 600, 600, 600, 600} {
		run = append(run, byte(g>>8), byte(g), 0, 0, byte(g>>8), byte(g), 1)
	}
	f.Add(run)
	f.Add(append(append(run, 0, 10, 0, 0, 0, 0, 1), 0, 10, 2, 1, 0, 0, 0))
	f.Add(append(run, 0, 0, 8, 1, 0, 0, 4, 255, 255, 1, 0, 1, 2, 9))

	f.Fuzz(func(t *testing.T, data []byte) {
		opt, p, in := fuzzInput(data)
		a := Analyze(in, p, opt)
		checkAnalysis(t, in, p, withDefaultsFor(opt), a)
	})
}

// withDefaultsFor returns the options Analyze used.
func withDefaultsFor(o Options) Options { return o.withDefaults() }

// checkAnalysis asserts the invariants of any analysis of in.
func checkAnalysis(t *testing.T, in []Attempt, p Policy, opt Options, a Analysis) {
	t.Helper()
	// Every attempt is in exactly one series or removed.
	count := map[Attempt]int{}
	for _, at := range in {
		count[at]++
	}
	for _, s := range a.Series {
		for _, at := range s.Attempts {
			count[at]--
		}
	}
	for _, r := range a.Removed {
		count[r.Attempt]--
		switch r.Reason {
		case ForeignSource:
			if opt.accepts(r.Attempt.Src.Addr()) {
				t.Errorf("removed %+v as foreign, but the options accept it", r.Attempt)
			}
		case Retransmission:
			if !r.Attempt.HasISN {
				t.Errorf("removed %+v as a retransmission without an ISN", r.Attempt)
			}
		default:
			t.Errorf("unknown reason %q", r.Reason)
		}
	}
	for at, n := range count {
		if n != 0 {
			t.Errorf("attempt %+v appears %d times too few in series and removed", at, n)
		}
	}

	// Passed: some series passes, and no gap of any series is out of range.
	judged, inRange := false, true
	seen := map[netip.AddrPort]bool{}
	for _, s := range a.Series {
		checkSeries(t, s, p, opt)
		if seen[s.Dst] {
			t.Errorf("two series to %v", s.Dst)
		}
		seen[s.Dst] = true
		judged = judged || s.Passed
		for _, g := range s.Gaps {
			inRange = inRange && g.Verdict == OK
		}
	}
	if a.Passed != (judged && inRange) {
		t.Errorf("Passed = %v, series say %v", a.Passed, judged && inRange)
	}
	switch {
	case a.Passed && a.Reason != nil:
		t.Errorf("passed with reason %+v", a.Reason)
	case !a.Passed && (a.Reason == nil || a.Reason.Kind != OutOfRange && inRange == false || a.Reason.Kind != TooFewAttempts && inRange):
		t.Errorf("failed with reason %+v; gaps in range %v", a.Reason, inRange)
	}
	kept := 0
	for _, s := range a.Series {
		kept += len(s.Attempts)
	}
	if want := max(0, kept-1); len(a.ReferenceBackoffMs) != want {
		t.Errorf("%d reference gaps for %d kept attempts", len(a.ReferenceBackoffMs), kept)
	}
	if s, ok := a.Primary(); ok != (len(a.Series) > 0) || ok && s.Dst != a.Series[0].Dst {
		t.Errorf("Primary() = %v, %v", s.Dst, ok)
	}
	if _, err := json.Marshal(a); err != nil {
		t.Errorf("json: %v", err)
	}
	if err := a.WriteText(io.Discard); err != nil {
		t.Errorf("WriteText: %v", err)
	}
	// The picture is well-formed and has one mark per attempt.
	var svg bytes.Buffer
	if err := a.WriteSVG(&svg, "fuzz"); err != nil {
		t.Errorf("WriteSVG: %v", err)
	}
	counts, _ := svgtest.Parse(t, svg.Bytes())
	if counts["attempt"] != len(in)-len(a.Removed) || counts["removed"] != len(a.Removed) {
		t.Errorf("SVG has %d attempt and %d removed marks for %d attempts, %d removed", counts["attempt"], counts["removed"], len(in), len(a.Removed))
	}
}

// checkSeries asserts the invariants of one series.
func checkSeries(t *testing.T, s Series, p Policy, opt Options) {
	t.Helper()
	if len(s.Attempts) == 0 {
		t.Fatalf("empty series to %v", s.Dst)
	}
	if want := len(s.Attempts) - 1; len(s.Gaps) != want {
		t.Errorf("series to %v: %d gaps for %d attempts", s.Dst, len(s.Gaps), len(s.Attempts))
	}
	passed := len(s.Gaps) >= opt.MinGaps
	if s.Has(TooFewAttempts) == passed && passed {
		t.Errorf("series to %v: %d gaps, TooFewAttempts %v", s.Dst, len(s.Gaps), s.Has(TooFewAttempts))
	}
	for i, g := range s.Gaps {
		if g.Index != i || g.Got != s.Attempts[i+1].Time.Sub(s.Attempts[i].Time) || g.Got < 0 {
			t.Errorf("gap %d = %+v does not match its attempts", i, g)
		}
		if g.Lo > g.Hi && p.Jitter >= 0 {
			t.Errorf("gap %d: range %v..%v", i, g.Lo, g.Hi)
		}
		passed = passed && g.Verdict == OK
	}
	for _, at := range s.Attempts {
		if destination(at.Dst) != s.Dst {
			t.Errorf("attempt to %v in the series to %v", at.Dst, s.Dst)
		}
	}
	if s.Passed != passed {
		t.Errorf("series Passed = %v, gaps say %v", s.Passed, passed)
	}
	if p.Initial == time.Second && p.Multiplier == 1.6 && p.Jitter == 0.2 && s.ReferencePassed != s.Passed && len(s.Gaps) >= opt.MinGaps {
		t.Errorf("series to %v: Passed %v but ReferencePassed %v", s.Dst, s.Passed, s.ReferencePassed)
	}
}
