package proxy

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/synhold/synhold/listener"
)

// scrape reads GET /metrics at base.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return fams
}

// sample is the value of the sample of family name whose labels include
// every one of want ("k=v"), and whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		var have []string
		for _, l := range m.GetLabel() {
			have = append(have, l.GetName()+"="+l.GetValue())
		}
		if !containsAll(have, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// shape is a family's name, type and label names, as compared with
// toxiproxy's.
func shape(f *dto.MetricFamily) string {
	var labels []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(labels, l.GetName()) {
				labels = append(labels, l.GetName())
			}
		}
	}
	sort.Strings(labels)
	return f.GetName() + " " + f.GetType().String() + " {" + strings.Join(labels, ",") + "}"
}

// TestMetricsAsToxiproxy: with -proxy-metrics and -runtime-metrics, the
// same traffic through toxiproxy-server v2.12.0 and through a Server gives
// the same toxiproxy_* families (names, types, labels, byte counts) and the
// same runtime families, and ours adds the synhold_handshake_* families.
func TestMetricsAsToxiproxy(t *testing.T) {
	theirs := startToxiproxy(t, "-proxy-metrics", "-runtime-metrics")
	e := newEnvConfig(t, Config{Strategy: listener.Auto, ProxyMetrics: true, RuntimeMetrics: true})
	up := echoServer(t)
	// Each server's two proxies forward one connection each, 5 bytes up
	// and 5 down: "lag" through a latency toxic, "plain" with no toxic (a
	// connection without data toxics must be counted too, however it is
	// forwarded).
	proxies := []string{"lag", "plain"}
	listens := map[string]string{}
	for _, base := range []string{theirs, e.api.URL} {
		c := toxiclient.NewClient(base)
		for _, name := range proxies {
			p, err := c.CreateProxy(name, "127.0.0.1:0", up)
			if err != nil {
				t.Fatal(err)
			}
			if name == "lag" {
				if _, err := p.AddToxic("lag", "latency", "downstream", 1, toxiclient.Attributes{"latency": 1}); err != nil {
					t.Fatal(err)
				}
			}
			conn := dial(t, p.Listen)
			roundTrip(t, conn, "hello")
			conn.Close()
			listens[base+" "+name] = p.Listen
		}
	}
	fams := map[string]map[string]*dto.MetricFamily{}
	for _, base := range []string{theirs, e.api.URL} {
		// The counters are added to as each direction ends: wait for all.
		counted := func() string {
			fams[base] = scrape(t, base)
			for _, name := range []string{"toxiproxy_proxy_received_bytes_total", "toxiproxy_proxy_sent_bytes_total"} {
				for _, proxy := range proxies {
					for _, dir := range []string{"upstream", "downstream"} {
						labels := []string{"proxy=" + proxy, "listener=" + listens[base+" "+proxy], "upstream=" + up, "direction=" + dir}
						if v, _ := sample(fams[base], name, labels...); v != 5 {
							return fmt.Sprintf("%s%v = %v, want 5", name, labels, v)
						}
					}
				}
			}
			return ""
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			missing := counted()
			if missing == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after 10 s: %s", base, missing)
			}
		}
	}
	theirFams, ourFams := fams[theirs], fams[e.api.URL]
	for name, f := range theirFams {
		o, ok := ourFams[name]
		switch {
		case !ok:
			t.Errorf("toxiproxy has %s, we have not", shape(f))
		case strings.HasPrefix(name, "toxiproxy_") && shape(o) != shape(f):
			t.Errorf("%s: toxiproxy's is %s, ours %s", name, shape(f), shape(o))
		case o.GetType() != f.GetType():
			t.Errorf("%s: toxiproxy's is a %v, ours a %v", name, f.GetType(), o.GetType())
		}
	}
	for name, f := range ourFams {
		if _, ok := theirFams[name]; !ok && !strings.HasPrefix(name, "synhold_") {
			t.Errorf("we have %s, toxiproxy has not", shape(f))
		}
	}
	if len(theirFams) < 10 {
		t.Errorf("toxiproxy-server's /metrics has %d families: runtime metrics missing?", len(theirFams))
	}
	t.Logf("%d metric families compared", len(theirFams))
}

// TestMetricsFlags: /metrics is served only with a flag, with only what the
// flag asks for, through toxiproxy's middlewares (request id, browsers).
func TestMetricsFlags(t *testing.T) {
	for _, tt := range []struct {
		proxy, runtime bool
		has, hasNot    []string
	}{
		{proxy: true, has: []string{"synhold_handshake_held_total"}, hasNot: []string{"go_goroutines"}},
		{runtime: true, has: []string{"go_goroutines", "process_open_fds"}, hasNot: []string{"synhold_handshake_held_total"}},
	} {
		e := newEnvConfig(t, Config{Strategy: listener.Auto, ProxyMetrics: tt.proxy, RuntimeMetrics: tt.runtime})
		p, err := e.client.CreateProxy("echo", "127.0.0.1:0", echoServer(t))
		if err != nil {
			t.Fatal(err)
		}
		// A handshake counter appears once a proxy has held a SYN; a
		// registered family with no sample is not in the text at all.
		e.srv.metrics.handshake().onHeld(p.Name)
		fams := scrape(t, e.api.URL)
		for _, n := range tt.has {
			if _, ok := fams[n]; !ok {
				t.Errorf("proxy %v runtime %v: no %s", tt.proxy, tt.runtime, n)
			}
		}
		for _, n := range tt.hasNot {
			if _, ok := fams[n]; ok {
				t.Errorf("proxy %v runtime %v: %s served", tt.proxy, tt.runtime, n)
			}
		}
		code, hdr, _ := e.do(t, "GET", "/metrics", "")
		if code != 200 || !requestIDShape.MatchString(hdr.Get(requestIDHeader)) {
			t.Errorf("GET /metrics: %d, request id %q", code, hdr.Get(requestIDHeader))
		}
		if code, _, _ := e.do(t, "GET", "/metrics", "", "User-Agent", "Mozilla/5.0"); code != 403 {
			t.Errorf("GET /metrics from a browser: %d, want 403", code)
		}
	}
}
