package backoff

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/svgplot/svgtest"
)

func TestWriteSVG(t *testing.T) {
	long := Default()
	short := with(1.6, 3*time.Second)
	r := seeded(7)
	// A client with two addresses, one retransmission and a stranger.
	v6 := attemptsAt(t0, conformant(short)(20*time.Second, r), client6, server6, 0, r)
	v4 := attemptsAt(t0.Add(2*time.Millisecond), conformant(short)(20*time.Second, r), client4, server4, 0, r)
	retx := v4[3]
	retx.Time = retx.Time.Add(time.Second)
	twoAddrs := append(append(v6, v4...), retx, Attempt{Time: t0.Add(3 * time.Second), Src: stranger, Dst: server4})
	for _, tc := range []struct {
		name     string
		in       []Attempt
		p        Policy
		texts    []string
		outside  bool
		logScale bool
	}{
		{"540 s at the 120 s cap", attemptsAt(t0, conformant(long)(540*time.Second, seeded(3)), client4, server4, 0, seeded(3)), long,
			[]string{"PASSED", "fitted multiplier", "logarithmic"}, false, true},
		{"20 s at a 3 s cap", attemptsAt(t0, conformant(short)(20*time.Second, seeded(3)), client4, server4, 0, seeded(3)), short,
			[]string{"PASSED", "seconds since the first attempt"}, false, false},
		{"compounding, 540 s", attemptsAt(t0, compounder(long)(540*time.Second, seeded(2)), client4, server4, 0, seeded(2)), long,
			[]string{"FAILED", "OutOfRange", "CompoundingJitter", "late +"}, true, true},
		{"two addresses, 20 s", twoAddrs, short,
			[]string{"[::1]:8081", "127.0.0.1:8081", "InterleavedAddresses", "retransmission", "foreign source"}, false, false},
		{"one attempt", attemptsAt(t0, nil, client4, server4, 0, seeded(1)), short,
			[]string{"FAILED", "TooFewAttempts", "the client made 1 attempt", "reference server", "the next attempt was due here"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Analyze(tc.in, tc.p, Loopback())
			var b bytes.Buffer
			if err := a.WriteSVG(&b, "test: "+tc.name); err != nil {
				t.Fatal(err)
			}
			counts, text := svgtest.Parse(t, b.Bytes())
			kept := 0
			for _, s := range a.Series {
				kept += len(s.Attempts)
			}
			if counts["attempt"] != kept || counts["removed"] != len(a.Removed) {
				t.Errorf("%d attempt marks and %d removed marks, want %d and %d", counts["attempt"], counts["removed"], kept, len(a.Removed))
			}
			gaps, outside := 0, 0
			for _, s := range a.Series {
				gaps += len(s.Gaps)
				for _, g := range s.Gaps {
					if g.Verdict != OK {
						outside++
					}
				}
			}
			if counts["outside"] != outside || (outside > 0) != tc.outside {
				t.Errorf("%d attempts marked outside their window, want %d (some: %v)", counts["outside"], outside, tc.outside)
			}
			if counts["window"] != gaps {
				t.Errorf("%d windows for %d gaps", counts["window"], gaps)
			}
			tooFew := 0
			for _, s := range a.Series {
				if s.Has(TooFewAttempts) {
					tooFew++
				}
			}
			if counts["missing"] != tooFew {
				t.Errorf("%d windows of a missing attempt, want one per series with too few attempts (%d)", counts["missing"], tooFew)
			}
			for _, want := range tc.texts {
				if !strings.Contains(text, want) {
					t.Errorf("picture lacks %q", want)
				}
			}
			if got := strings.Contains(text, "logarithmic"); got != tc.logScale {
				t.Errorf("logarithmic axis %v, want %v", got, tc.logScale)
			}
			if dir := os.Getenv("BACKOFF_SVG_DIR"); dir != "" {
				name := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name) + ".svg"
				if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestWriteSVGError(t *testing.T) {
	if err := Analyze(nil, Policy{}, Options{}).WriteSVG(failingWriter{}, ""); err == nil {
		t.Error("WriteSVG hid the writer's error")
	}
}
