package main

import (
	"strings"
	"testing"

	"github.com/synhold/synhold/bench/internal/stats"
)

// manyResults are figures of the rows of many at once, some meeting their
// targets and some not.
func manyResults() *Results {
	sum := func(p50, p99, max, min float64) stats.Summary {
		return stats.Summary{N: 100, MinUS: min, MeanUS: p50, P50US: p50, P99US: p99, MaxUS: max}
	}
	return &Results{
		Pool: []PoolRow{
			{Name: "pool/100", N: 100, Rounds: 5, Error: sum(200, 450, 1200, 3), FloorUS: 3000, Seen: 500, Dialled: 500},
			{Name: "pool/300", N: 300, Rounds: 3, Error: sum(600, 1500, 1600, -30), FloorUS: 9000},
			{Name: "pool/1000", N: 1000, Rounds: 2, Error: sum(9000, 40000, 41000, 5), FloorUS: 30000,
				CPU: CPUUse{Thread: clockThreadName, CPUUS: 100000, Releases: 2000, PerReleaseUS: 50}},
		},
		Floor: []FloorRow{{N: 100, Rounds: 5, SpanUS: 3000, PerHandshakeUS: 30}},
		Suite: []UsedRow{{Name: "suite/8", Label: "8 client processes in parallel", Clients: 8, Release: sum(40, 350, 900, -2)}},
		AsUsed: []UsedRow{{Name: "used/idle", Label: "machine as it is", Release: sum(30, 200, 400, -5),
			Reply: sum(1100, 2000, 3000, 900), ControlFloor: sum(750, 900, 1000, 600)}},
	}
}

func TestManyTargets(t *testing.T) {
	got := map[string]Target{}
	for _, tg := range manyTargets(manyResults()) {
		got[tg.Name] = tg
	}
	for _, w := range []struct {
		name string
		met  bool
		by   string
	}{
		{"pool of 100 through handshake-proxy: error p99", true, "50 µs to spare"},
		{"pool of 100 through handshake-proxy: error max", false, "missed by 200 µs (1.2×)"},
		{"300 at once through handshake-proxy: error p99", false, "missed by 500 µs (1.5×)"},
		{"1000 at once through handshake-proxy: error p99 against the floor's cost of 1000", true, "5.00 ms to spare"},
		{"clock thread CPU per release, 1000 at once (synhold-clock)", true, "50 µs to spare"},
		{"parallel suite (8 processes): release error p99", false, "missed by 50 µs (1.2×)"},
		{"lone control reply p50 − the do-nothing server's p50", false, "missed by 250 µs (3.5×)"},
		{"earliest handshake anywhere (as used, pools, suite)", false, "5.0 µs too early"},
	} {
		tg, ok := got[w.name]
		if !ok || tg.Met != w.met || tg.By != w.by {
			t.Errorf("target %q = %+v (present %v), want met %v by %q", w.name, tg, ok, w.met, w.by)
		}
	}
	if tg := got["1000 at once through handshake-proxy: error p99 against the floor's cost of 1000"]; tg.Want != "≤ 1.5 × 30.00 ms = 45.00 ms" {
		t.Errorf("the floor's target says %q", tg.Want)
	}
	if e := got["earliest handshake anywhere (as used, pools, suite)"]; !strings.Contains(e.Got, "pool/300") {
		t.Errorf("earliest %q does not name the pool of 300", e.Got)
	}
	r := manyResults()
	r.Pool[2].FloorUS = 0
	for _, tg := range manyTargets(r) {
		if strings.HasPrefix(tg.Name, "1000 at once") && (tg.Met || tg.Got != "no floor measured") {
			t.Errorf("without a floor: %+v", tg)
		}
	}
	if ts := manyTargets(&Results{}); len(ts) != 0 {
		t.Errorf("targets without the rows: %+v", ts)
	}
}

func TestReportMany(t *testing.T) {
	r := manyResults()
	var b strings.Builder
	reportMany(&b, r)
	md := b.String()
	for _, w := range []string{"## 0b.", "| 100 | 5 | 500/500 | 200 µs | 450 µs | 1.20 ms | 0 | 0 | 3.00 ms | 30 µs |", "| 30 µs |",
		"| 8 client processes in parallel (8 client process(es)) |", "| 1.10 ms | 2.00 ms | 750 µs | 900 µs | 350 µs |"} {
		if !strings.Contains(md, w) {
			t.Errorf("section lacks %q:\n%s", w, md)
		}
	}
	b.Reset()
	reportMany(&b, &Results{})
	if b.Len() != 0 {
		t.Errorf("section without the rows: %q", b.String())
	}
}
