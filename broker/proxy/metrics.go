package proxy

import (
	"net/http"
	"time"

	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is what GET /metrics serves: toxiproxy's collectors, under their
// names and labels (its collectors package), and the handshake toxics' own.
type metrics struct {
	handler http.Handler
	// bytes are toxiproxy's per-proxy byte counters, which its links add to
	// when a connection's direction ends; nil without proxy metrics.
	bytes *collectors.ProxyMetricCollectors
	// handshakes are the handshake toxics' counters; nil without proxy
	// metrics.
	handshakes *handshakeMetrics
}

func newMetrics(proxy, runtime bool) *metrics {
	reg := prometheus.NewRegistry()
	m := new(metrics)
	if runtime {
		reg.MustRegister(collectors.NewRuntimeMetricCollectors().Collectors()...)
	}
	if proxy {
		m.bytes = collectors.NewProxyMetricCollectors()
		reg.MustRegister(m.bytes.Collectors()...)
		m.handshakes = newHandshakeMetrics()
		reg.MustRegister(m.handshakes.held, m.handshakes.released, m.handshakes.refused, m.handshakes.late)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// handshakeMetrics count what the handshake toxics did, per proxy, from the
// listener's events (which need the capture: strategy replay).
type handshakeMetrics struct {
	held, released, refused *prometheus.CounterVec
	late                    *prometheus.HistogramVec
}

func newHandshakeMetrics() *handshakeMetrics {
	labels := []string{"proxy"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "synhold", Subsystem: "handshake", Name: name, Help: help}, labels)
	}
	return &handshakeMetrics{
		held:     counter("held_total", "Connections whose first SYN a handshake toxic held."),
		released: counter("released_total", "Held handshakes completed: the SYN-ACK was sent."),
		refused:  counter("refused_total", "Handshakes answered with a RST by handshake_refuse."),
		late: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "synhold", Subsystem: "handshake", Name: "release_late_seconds",
			Help: "How long after its chosen instant a held handshake's SYN-ACK or RST was sent (kernel times).",
			// 10 µs to 0.65 s, by fours.
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 9),
		}, labels),
	}
}

// onHeld counts a connection whose first SYN was held.
func (h *handshakeMetrics) onHeld(proxy string) {
	if h != nil {
		h.held.WithLabelValues(proxy).Inc()
	}
}

// onAnswered counts a held handshake's SYN-ACK (refused false) or RST, and
// how late it was if it had an instant (want non-zero).
func (h *handshakeMetrics) onAnswered(proxy string, refused bool, want time.Time, late time.Duration) {
	if h == nil {
		return
	}
	if refused {
		h.refused.WithLabelValues(proxy).Inc()
	} else {
		h.released.WithLabelValues(proxy).Inc()
	}
	if !want.IsZero() {
		h.late.WithLabelValues(proxy).Observe(late.Seconds())
	}
}

// handshake returns the handshake counters; nil (counting nothing) without
// proxy metrics.
func (m *metrics) handshake() *handshakeMetrics {
	if m == nil {
		return nil
	}
	return m.handshakes
}
