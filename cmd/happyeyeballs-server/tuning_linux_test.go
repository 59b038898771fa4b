package main

import (
	"testing"
	"time"
)

// TestReleaseClockLine: after pairs released by replay, the shutdown line
// "release clock" says what the clock thread did, with the share of its
// batches it was on its CPU.
func TestReleaseClockLine(t *testing.T) {
	needHold(t, "replay")
	s := startServer(t, "--strategy", "replay")
	addr4, _, sent, replied := askPair(t, s.port, 0x06)
	connectNotEarly(t, "tcp4", addr4, sent, replied, 400*time.Millisecond, 2250*time.Millisecond)
	if code := s.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	rs := records(s.Stderr.String(), "release clock")
	if len(rs) != 1 {
		t.Fatalf("%d release clock lines, want 1; log:\n%s", len(rs), s.Stderr)
	}
	r := rs[0]
	if n, _ := r["releases"].(float64); n < 1 {
		t.Errorf("releases %v, want at least 1", r["releases"])
	}
	if c, _ := r["cpu_per_release_us"].(float64); c <= 0 {
		t.Errorf("cpu_per_release_us %v, want > 0", r["cpu_per_release_us"])
	}
	if p, ok := r["on_cpu_pct"].(float64); !ok || p <= 0 || p > 100 {
		t.Errorf("on_cpu_pct %v, want in (0, 100]", r["on_cpu_pct"])
	}
}
