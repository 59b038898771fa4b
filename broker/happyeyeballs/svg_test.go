package happyeyeballs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/svgplot/svgtest"
)

// sampleReport is two judged pairs: a conforming client (IPv6, then IPv4
// 250 ms later, IPv6 wins) and one that does not race (it drops IPv6 at
// 250 ms; IPv4, slow, wins at 2 s), with a retransmitted SYN.
func sampleReport() Report {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	mk := func(f Family, kind string, ms float64) Mark {
		return Mark{Family: f, Kind: kind, At: at(ms), MS: ms, Client: "[::1]:4000"}
	}
	r := Report{Summary: newSummary()}
	for i, o := range []observation{
		{slow: 4, fastWant: at(1000), firstSYN: [2]time.Time{at(250.3), at(0.2)}, winner: 6, won: at(1000.1)},
		{slow: 4, fastWant: at(1000), firstSYN: [2]time.Time{at(250.5), at(0.1)}, winner: 4, won: at(2000.1)},
	} {
		o.pair = uint64(i + 1)
		j := judge(o)
		r.Summary.add(j)
		p := PairReport{Judgement: j, Slow: 4, IPv4Port: uint16(40000 + i), Replied: t0, FastMS: 1000, SlowMS: 2000}
		if i == 0 {
			p.ClosedMS = 1001
			p.Marks = []Mark{mk(6, "syn", 0.2), mk(4, "syn", 250.3), mk(6, "release", 1000), mk(6, "synack", 1000.1), mk(6, "connected", 1000.4)}
		} else {
			p.SamePort = true
			p.ClosedMS = 2001
			p.Marks = []Mark{mk(6, "syn", 0.1), mk(4, "syn", 250.5), mk(6, "release", 1000), mk(4, "retransmit", 1250.5), mk(4, "release", 2000), mk(4, "synack", 2000.1), mk(4, "connected", 2000.5)}
		}
		r.Pairs = append(r.Pairs, p)
	}
	return r
}

func TestWriteSVG(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteSVG(&b, "two clients"); err != nil {
		t.Fatal(err)
	}
	counts, text := svgtest.Parse(t, b.Bytes())
	want := map[string]int{"pair": 2, "syn": 4, "retransmit": 1, "hold": 4, "want": 4, "release": 3, "synack": 2, "winner": 2, "attempt-delay": 2}
	for class, n := range want {
		if counts[class] != n {
			t.Errorf("%d elements of class %q, want %d", counts[class], class, n)
		}
	}
	for _, w := range []string{"two clients", "2 pairs:", "1 conform", "1 deviate", "SlowWinner 1", "attempt delay 250.10 ms",
		"attempt delay 250.40 ms", "pair 1", "pair 2", "one port 40001", "won 2000.5 ms", "ms since the server replied", "did not race"} {
		if !strings.Contains(text, w) {
			t.Errorf("the picture does not say %q", w)
		}
	}
	if dir := os.Getenv("HE_SVG_DIR"); dir != "" { // to look at it: HE_SVG_DIR=/tmp go test -run TestWriteSVG
		os.WriteFile(filepath.Join(dir, "he-timeline.svg"), b.Bytes(), 0o644)
	}
	var empty bytes.Buffer
	if err := (Report{Summary: newSummary()}).WriteSVG(&empty, ""); err != nil {
		t.Fatal(err)
	}
	if _, text := svgtest.Parse(t, empty.Bytes()); !strings.Contains(text, "No pair was judged") {
		t.Errorf("an empty report's picture says %q", text)
	}
}
