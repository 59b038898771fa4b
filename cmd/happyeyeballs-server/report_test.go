package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReport runs the server with --report, has one pair connected over
// its fast side only, stops the server, and reads what it wrote: the
// summary line in the log, report.json, summary.txt and timeline.svg.
func TestReport(t *testing.T) {
	needHold(t, "replay") // the judgement needs the captured SYNs
	dir := filepath.Join(t.TempDir(), "new")
	s := startServer(t, append([]string{"--strategy", "replay", "--report", dir}, testDelays...)...)
	addr4, _, sent, replied := askPair(t, s.port, 0x06) // IPv6 slow: dial IPv4 alone
	if b := connectNotEarly(t, "tcp4", addr4, sent, replied, 400*time.Millisecond, 10*time.Second); b != 0x04 {
		t.Fatalf("read 0x%02x", b)
	}
	if r := runNow("-c", strconv.Itoa(s.port), "--stop"); r.code != 0 {
		t.Fatalf("--stop: %d %s", r.code, r.stderr)
	}
	if code := s.Wait(t); code != 0 {
		t.Fatalf("server exit %d:\n%s", code, s.Stderr)
	}
	sum := records(s.Stderr.String(), "happy eyeballs summary")
	if len(sum) != 1 || sum[0]["pairs"] != 1.0 || sum[0]["deviates"] != 1.0 || sum[0]["conforms"] != 0.0 {
		t.Fatalf("summary lines %v, want one with 1 pair, deviating", sum)
	}
	if devs, _ := sum[0]["deviations"].(map[string]any); devs["IPv4First"] != 1.0 || devs["SingleFamily"] != 1.0 || devs["SlowWinner"] != 0.0 {
		t.Errorf("summary deviations %v, want IPv4First and SingleFamily once", sum[0]["deviations"])
	}
	var rep struct {
		Summary struct {
			Pairs    int            `json:"pairs"`
			Verdicts map[string]int `json:"verdicts"`
		} `json:"summary"`
		Pairs []struct {
			Pair       int      `json:"pair"`
			First      string   `json:"first"`
			Delay      *float64 `json:"attempt_delay_ms"`
			Winner     string   `json:"winner"`
			Verdict    string   `json:"verdict"`
			Deviations []string `json:"deviations"`
			Marks      []struct {
				Kind string  `json:"kind"`
				MS   float64 `json:"ms"`
			} `json:"marks"`
		} `json:"pairs"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Pairs != 1 || rep.Summary.Verdicts["deviates"] != 1 || len(rep.Pairs) != 1 {
		t.Fatalf("report.json: %s", b)
	}
	p := rep.Pairs[0]
	if p.First != "ipv4" || p.Delay != nil || p.Winner != "ipv4" || p.Verdict != "deviates" || strings.Join(p.Deviations, ",") != "IPv4First,SingleFamily" {
		t.Errorf("pair %+v", p)
	}
	var kinds []string
	for _, m := range p.Marks {
		kinds = append(kinds, m.Kind)
	}
	if got := strings.Join(kinds, " "); !strings.HasPrefix(got, "syn ") || !strings.Contains(got, "release") || !strings.HasSuffix(got, "synack connected") {
		t.Errorf("marks %s, want syn ... release ... synack connected", got)
	}
	txt, err := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if err != nil || !strings.Contains(string(txt), "1 pair judged against RFC 8305: 0 conform, 1 deviate, 0 unknown.\n  IPv4First: 1 pair. RFC 8305 section 4") ||
		!strings.Contains(string(txt), "tried IPv4 first although IPv6 was offered") {
		t.Errorf("summary.txt %q, %v", txt, err)
	}
	svg, err := os.Open(filepath.Join(dir, "timeline.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer svg.Close()
	for d := xml.NewDecoder(svg); ; {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("timeline.svg: %v", err)
		}
	}
}

// TestReportDirUnusable: a --report that cannot be created stops the
// server at start-up, before any pair, with the flag named.
func TestReportDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	r := runNow("-c", "0", "--strategy", "delayed-listen", "--report", filepath.Join(file, "dir"))
	if r.code != 1 || !strings.Contains(r.stderr, "--report") {
		t.Errorf("exit %d, stderr %q; want 1 and --report named", r.code, r.stderr)
	}
}
