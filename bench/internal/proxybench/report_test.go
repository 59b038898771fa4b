package proxybench

import (
	"strings"
	"testing"

	"github.com/synhold/synhold/bench/internal/stats"
)

// forwardRow is a forwarding row through via.
func forwardRow(via, toxic string, rttUS, mbps, conns, idleKB float64) Row {
	return Row{Name: "forward_" + rowName(via), Via: via, Toxic: toxic, RTT: stats.Summary{N: 10, P50US: rttUS, P99US: 2 * rttUS},
		MBps: mbps, ConnsPerS: conns, RSSMB: 20, RSSPerIdleKB: idleKB, IdleConns: 200}
}

func TestReportJudgesForwarding(t *testing.T) {
	direct := forwardRow("direct", "", 40, 1000, 4000, 0)
	for _, tc := range []struct {
		name  string
		ours  Row
		wants []string
	}{
		{"every target met", forwardRow("handshake-proxy", "", 60, 900, 3000, 20),
			[]string{"RTT p50 1.50× direct (≤ 2×): met", "throughput 90% of direct (≥ 80%): met",
				"connections/s 2.50× toxiproxy's (≥ 2×): met", "RSS per idle connection 20.0 kB, toxiproxy's 46.0 kB (no more): met"}},
		{"every target missed", forwardRow("handshake-proxy", "", 120, 600, 1300, 50),
			[]string{"RTT p50 3.00× direct (≤ 2×): NOT met", "throughput 60% of direct (≥ 80%): NOT met",
				"connections/s 1.08× toxiproxy's (≥ 2×): NOT met", "(no more): NOT met"}},
	} {
		rows := []Row{direct, tc.ours, forwardRow("toxiproxy 2.5.0", "", 170, 400, 1200, 46), forwardRow("toxiproxy 2.12.0", "", 175, 410, 1100, 47),
			{Name: "handshake_delay_handshake_proxy", Via: "handshake-proxy", Toxic: "handshake_delay delay=50", Wire: stats.Summary{N: 20, P50US: 34}}}
		md := Report(rows)
		for _, w := range append(tc.wants, "| handshake_delay_handshake_proxy | handshake-proxy | handshake_delay delay=50 |") {
			if !strings.Contains(md, w) {
				t.Errorf("%s: report lacks %q:\n%s", tc.name, w, md)
			}
		}
	}
	if md := Report([]Row{direct}); strings.Contains(md, "Targets") {
		t.Errorf("targets judged without handshake-proxy's and toxiproxy's rows:\n%s", md)
	}
}
