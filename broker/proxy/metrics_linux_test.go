package proxy

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/testenv"
)

// TestHandshakeMetrics: the synhold_handshake_* counters count what the
// handshake toxics did, per proxy: held and released for a
// handshake_delay, held and refused for a handshake_refuse, and one late
// sample for each answer that had an instant.
func TestHandshakeMetrics(t *testing.T) {
	e := replayEnvConfig(t, Config{ProxyMetrics: true})
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	if _, err := p.AddToxic("slow", "handshake_delay", "", 1, toxiclient.Attributes{"delay": 50}); err != nil {
		t.Fatal(err)
	}
	const delayed = 3
	for range delayed {
		c, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if err := p.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("no", "handshake_refuse", "", 1, toxiclient.Attributes{"delay": 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", p.Listen, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial through handshake_refuse: %v, want connection refused", err)
	}
	want := map[string]float64{
		"synhold_handshake_held_total":           delayed + 1,
		"synhold_handshake_released_total":       delayed,
		"synhold_handshake_refused_total":        1,
		"synhold_handshake_release_late_seconds": delayed + 1,
	}
	// The counts follow the capture's events, which may trail the dial.
	var got map[string]float64
	testenv.WaitFor(t, 5*time.Second, "the handshake counters", func() bool {
		fams := scrape(t, e.api.URL)
		got = map[string]float64{}
		ok := true
		for name, w := range want {
			got[name], _ = sample(fams, name, "proxy="+p.Name)
			ok = ok && got[name] == w
		}
		return ok
	})
	fams := scrape(t, e.api.URL)
	h := fams["synhold_handshake_release_late_seconds"].GetMetric()[0].GetHistogram()
	if s := h.GetSampleSum(); s < 0 || s > float64(delayed+1)*slack.Seconds() {
		t.Errorf("late sum %.6f s over %d answers: want each within %v", s, delayed+1, slack)
	}
}
