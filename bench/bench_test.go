package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
)

// sum is a Summary of 100 samples with the given median and tail.
func sum(p50, p99 float64) stats.Summary {
	return stats.Summary{N: 100, MinUS: p50 / 2, MeanUS: p50, P50US: p50, P99US: p99, MaxUS: p99 * 2}
}

// sampleRun is the Run of the sample results.
func sampleRun() Run {
	return Run{
		Machine: Machine{Kernel: "Linux 6.x", CPUModel: "Test CPU", Cores: 2, GoVersion: "go1.26", GOMAXPROCS: 2,
			Date: "2026-01-01T00:00:00Z", Hogs: []string{"pid 1 `sh` 50%"}, IdlePct: 10},
		Options:     Options{Command: "go run ./bench -short"},
		Descriptors: FDCheck{Start: 9, End: 9},
	}
}

func sampleResults() *Results {
	return &Results{
		Run: sampleRun(),
		AsUsed: []UsedRow{
			{Name: "used/idle", Label: "machine as it is", Pairs: 200, Replied: 200, Winners: 200, FastWon: 200,
				Release: sum(45, 280), ServerReported: 200, ServerGap: sum(3, 10), ServerGapMaxUS: 15, Reply: sum(400, 900)},
			{Name: "used/idle/both", Label: "machine as it is, both at once", Mode: modeBoth, Pairs: 100, Winners: 100, Release: sum(40, 200)},
			{Name: "used/busy4", Label: "4 busy processes", Hogs: 4, Pairs: 200, Replied: 200, Winners: 200, FastWon: 199,
				Release: sum(300, 1500), Early: 2, ServerReported: 150, ServerGap: sum(5, 40), ServerGapMaxUS: 60, Reply: sum(900, 3000)},
		},
		Levers: []UsedRow{
			{Name: "lever/no-fifo/busy4", Label: "SCHED_OTHER clock thread, 4 busy processes", Hogs: 4, Note: "releaseclock.RealTime off",
				Pairs: 50, Winners: 50, Release: sum(900, 9000), Reply: sum(800, 2000)},
		},
		Scale: []ScaleRow{
			{Pairs: 1, Variant: "default", Rounds: 50, Requests: 50, ReplyOK: 50, Connected: 50, Reply: sum(1000, 5000), Release: sum(100, 150),
				BrokerLate: stats.Summary{N: 30, P50US: 100, P99US: 150}, SamplesUS: []float64{100}},
			{Pairs: 500, Variant: "default", Rounds: 1, Requests: 500, ReplyOK: 500, Connected: 500, Reply: sum(60000, 120000), Release: sum(50, 2500),
				Peak: MemPoint{FDs: 2015, HeapMB: 11, RSSMB: 40}, SamplesUS: []float64{50}},
		},
	}
}

func sampleExperiments() *ExperimentResults {
	row := func(name, label string, p50, p99 float64) ReleaseRow {
		return ReleaseRow{Name: name, Label: label, Strategy: "replay", Clock: "timerfd", SpinUS: 200, Trials: 100,
			Completed: 100, Error: sum(p50, p99), Opened: sum(5, 9), Replayed: sum(40, 90), SamplesUS: []float64{p50, p99}}
	}
	return &ExperimentResults{
		Run: sampleRun(),
		Release: []ReleaseRow{
			row("replay/runtime", "Replay, runtime timer, no spin", 480, 1100),
			row("replay/runtime+spin", "Replay, runtime timer + spin", 450, 950),
			row("replay/timerfd", "Replay, timerfd, no spin", 115, 200),
			row("replay/timerfd+spin", "Replay, timerfd + spin (default)", 40, 110),
			{Name: "replay/batch", Label: "Replay, 50 listeners at one instant, one pass", Strategy: "replay", Batch: 50,
				PerReleaseUS: 20, Trials: 50, Completed: 50, Error: sum(500, 1000)},
			{Name: "retransmit", Label: "Retransmit (no privilege)", Strategy: "retransmit", Trials: 4, Completed: 4, Error: sum(970000, 999000)},
			{Name: "delayed-listen", Label: "DelayedListen (the original's way)", Strategy: "delayed-listen", Trials: 4, Refused: 4,
				Client: sum(25, 30)},
		},
		Experiments: []ReleaseRow{
			row("exp/gc-off", "timerfd + spin, GC off during the trial", 45, 100),
			{Name: "bare/detach-send", Label: "by hand: detach, then replay", Strategy: "replay", Clock: bareClockName,
				Trials: 50, Completed: 50, Error: sum(30, 70), Opened: sum(4, 8)},
			{Name: "bare/send-detach", Label: "by hand: replay, then detach", Strategy: "replay", Clock: bareClockName,
				Trials: 50, Completed: 50, Error: sum(22, 60), Opened: sum(50, 80)},
			{Name: "loaded/library", Label: "Library default, under load", Strategy: "replay", Clock: "timerfd", Note: "4 busy processes",
				Trials: 50, Completed: 50, Error: sum(60, 6000)},
			{Name: "loaded/bare", Label: "by hand, under load", Strategy: "replay", Clock: bareClockName, Trials: 50, Completed: 50, Error: sum(40, 5000)},
			{Name: "loaded/bare-fifo", Label: "by hand: SCHED_FIFO, under load", Strategy: "replay", Clock: bareClockName, Trials: 50, Completed: 50,
				Error: sum(38, 600)},
		},
		Wake: []WakeRow{
			{Name: "wake/fifo/0", Label: "SCHED_FIFO 10, machine as is", Policy: "SCHED_FIFO 10", Load: "machine as is", Error: sum(0, 1)},
			{Name: "wake/other/1", Label: "SCHED_OTHER, + 4 busy processes", Policy: "SCHED_OTHER", Load: "+ 4 busy processes", Error: sum(0, 4000)},
			{Name: "wake/fifo/1", Label: "SCHED_FIFO 10, + 4 busy processes", Policy: "SCHED_FIFO 10", Load: "+ 4 busy processes", Error: sum(0, 1)},
			{Name: "wake/fifo/2", Label: "SCHED_FIFO 10, + 2 busy goroutines", Policy: "SCHED_FIFO 10", Load: "+ 2 busy goroutines", Error: sum(0, 14000)},
		},
		Stamps: []StampRow{{Name: "syn-capture", Label: "SYN capture − client record", Delta: sum(5, 20)}, {Name: "accept", Label: "accept(2) − client record", Delta: sum(30, 90)}},
		ScaleExperiments: []ScaleRow{
			{Pairs: 1, Variant: scaleKeepLabel, Rounds: 50, Requests: 50, ReplyOK: 50, Connected: 50, Reply: sum(700, 1500), Release: sum(100, 150)},
			{Pairs: 500, Variant: "default", Rounds: 1, Requests: 500, ReplyOK: 500, Connected: 500, Release: sum(50, 2500)},
			{Pairs: 500, Variant: "GC off", Rounds: 1, Requests: 500, ReplyOK: 500, Connected: 500, Release: sum(40, 900)},
		},
		ListenCost: []CostRow{
			{Name: "listen/warm", Label: "listener.Listen, others open", Cost: sum(35, 60)},
			{Name: "listen/by-hand", Label: "by hand: socket, hold filter, bind, listen", Cost: sum(15, 30)},
			{Name: "netns-stat", Label: "stat /proc/thread-self/ns/net on a locked thread", Cost: sum(5, 10)},
			{Name: "close/last", Label: "Held.Close of the last listener", Cost: sum(10000, 20000)},
			{Name: "capture/close", Label: "capture Socket.Close", Cost: sum(9000, 16000)},
			{Name: "control-floor", Label: "500 control requests at once, minimal server (no listeners)", Cost: sum(17000, 20000)},
		},
	}
}

func TestClockStepsAreReported(t *testing.T) {
	r := sampleExperiments()
	r.Machine.ClockSteps = []ClockStep{{AtS: 12.5, StepUS: -472252.7}}
	r.Stamps[0].Impossible = 1
	r.Targets, r.Findings = judgeExperiments(r)
	var b strings.Builder
	if err := WriteExperimentsReport(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-472.25 ms at 12.5 s", "1 sample(s) left out", "CLOCK_REALTIME jumped"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestClockWatchSeesNoStepOnASteadyClock(t *testing.T) {
	w := watchClock(time.Millisecond, 100*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if steps := w.stop(); len(steps) != 0 {
		t.Errorf("steps %v on a steady clock", steps)
	}
	if sk := w.skew(time.Now()); sk.Abs() > 100*time.Millisecond {
		t.Errorf("skew %v", sk)
	}
}

func TestReportIncludesEveryRow(t *testing.T) {
	r := sampleResults()
	r.Targets, r.Findings = judge(r)
	var b strings.Builder
	if err := WriteReport(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	var want []string
	for _, u := range r.AsUsed {
		want = append(want, "| "+u.Label+" |")
	}
	for _, l := range r.Levers {
		want = append(want, "| "+l.Label+" ("+l.Note+") |")
	}
	for _, tg := range r.Targets {
		want = append(want, "| "+tg.Name+" |")
	}
	want = append(want, "| 1 | default |", "| 500 | default |", "cdf-used.svg", "experiments.md", "proxy.md",
		"Linux 6.x", "Test CPU, 2 cores", "go1.26, GOMAXPROCS=2", "2026-01-01T00:00:00Z",
		"## 0.", "## Scale", "## Targets", "## Findings", "## Descriptors")
	checkReport(t, md, want)
	if i, j := strings.Index(md, "## Targets"), strings.Index(md, "## 0."); i < 0 || j < i {
		t.Error("the targets are not above the \"as it is used\" section")
	}
	for _, bad := range []string{"## Handshake release accuracy", "warm loop", "cdf.svg)"} {
		if strings.Contains(md, bad) {
			t.Errorf("the headline report holds an experiment's %q", bad)
		}
	}
}

func TestExperimentsReportIncludesEveryRow(t *testing.T) {
	r := sampleExperiments()
	r.Targets, r.Findings = judgeExperiments(r)
	var b strings.Builder
	if err := WriteExperimentsReport(&b, r); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, rows := range [][]ReleaseRow{r.Release, r.Experiments} {
		for _, row := range rows {
			want = append(want, "| "+row.Label+" |")
		}
	}
	for _, w := range r.Wake {
		want = append(want, "| "+w.Label+" |")
	}
	for _, s := range r.Stamps {
		want = append(want, "| "+s.Label+" |")
	}
	for _, c := range r.ListenCost {
		want = append(want, "| "+c.Label+" |")
	}
	for _, tg := range r.Targets {
		want = append(want, "| "+tg.Name+" |")
	}
	want = append(want, "| 500 | default |", "| 500 | GC off |", "| 1 | "+scaleKeepLabel+" |", "refused 4/4", "cdf.svg", "cdf-experiments.svg",
		"## Handshake release accuracy", "## Timestamp accuracy", "## Scale, one knob turned", "## Targets", "## Findings", "## Descriptors")
	checkReport(t, b.String(), want)
}

// checkReport fails unless md is a titled report holding every one of
// want and no advice naming the code.
func checkReport(t *testing.T, md string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	for _, bad := range []string{".go", "What to change", "func ", "`(*"} {
		if strings.Contains(md, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	if !strings.HasPrefix(md, "# ") {
		t.Error("report does not start with a title")
	}
}

func TestTargetsMetAndMissed(t *testing.T) {
	r := sampleResults()
	got := map[string]bool{}
	for _, tg := range targets(r) {
		got[tg.Name] = tg.Met
	}
	for name, met := range map[string]bool{
		"as used, machine as it is: release error p50":                               false, // 45 > 35
		"as used, machine as it is: release error p99":                               true,  // 280 ≤ 300
		"as used, machine as it is: release error max":                               true,  // 560 ≤ 1000
		"as used, 4 busy processes, server as root: release error p99":               false, // 1.5 ms
		"as used, 4 busy processes, server as root: release error max":               false, // 3 ms
		"as used, machine as it is: control reply p99":                               true,  // 900 µs
		"as used, 4 busy processes: control reply p99":                               false, // 3 ms
		"as used, machine as it is: winners' SYN-ACK reported by the server":         true,
		"as used, 4 busy processes: winners' SYN-ACK reported by the server":         false, // 150 of 200
		"as used, machine as it is: server's SYN-ACK time − tcpdump's, largest gap":  true,  // 15 µs
		"as used, 4 busy processes: server's SYN-ACK time − tcpdump's, largest gap":  false, // 60 µs
		"as used, machine as it is: handshakes completed > 20 µs before the instant": true,
		"as used, 4 busy processes: handshakes completed > 20 µs before the instant": false, // 2
		"500 pairs, release error p99":                                               false, // 2.5 ms > 2 ms
		"500 pairs, control reply p99":                                               false, // 120 ms > 10 ms
		"descriptors after everything closed":                                        true,
	} {
		if m, ok := got[name]; !ok || m != met {
			t.Errorf("target %q: met %v (present %v), want %v", name, m, ok, met)
		}
	}
	by := map[string]string{}
	for _, tg := range targets(r) {
		by[tg.Name] = tg.By
	}
	for name, want := range map[string]string{
		"as used, machine as it is: release error p50":                       "missed by 10 µs (1.3×)",
		"as used, 4 busy processes, server as root: release error p99":       "missed by 500 µs (1.5×)",
		"as used, 4 busy processes: winners' SYN-ACK reported by the server": "50 missing",
	} {
		if by[name] != want {
			t.Errorf("target %q: by %q, want %q", name, by[name], want)
		}
	}
	r.Descriptors = FDCheck{Start: 9, End: 11, Leaked: true}
	r.AsUsed = nil
	for _, tg := range targets(r) {
		if tg.Name == "descriptors after everything closed" && tg.Met {
			t.Error("a leak is reported met")
		}
		if strings.HasPrefix(tg.Name, "as used") {
			t.Errorf("target %q without the scenario run", tg.Name)
		}
	}
}

func TestExperimentTargetsMetAndMissed(t *testing.T) {
	r := sampleExperiments()
	ts, _ := judgeExperiments(r)
	got := map[string]bool{}
	for _, tg := range ts {
		got[tg.Name] = tg.Met
	}
	for name, met := range map[string]bool{
		"Replay, one pair, release error p50 (timerfd + spin)": true, // 40 µs <= 50 µs
		"Replay, one pair, release error p99 (timerfd + spin)": true, // 110 µs <= 500 µs
		"SYN capture − client record, p99":                     true, // 20 µs <= 100 µs
		"descriptors after everything closed":                  true,
	} {
		if m, ok := got[name]; !ok || m != met {
			t.Errorf("target %q: met %v (present %v), want %v", name, m, ok, met)
		}
	}
	r.Release = nil
	ts, _ = judgeExperiments(r)
	for _, tg := range ts {
		if strings.HasPrefix(tg.Name, "Replay, one pair") && (tg.Met || tg.Got != "not measured") {
			t.Errorf("target %q without figures: %+v", tg.Name, tg)
		}
	}
}

func TestFindingsNameTheIngredient(t *testing.T) {
	_, efs := judgeExperiments(sampleExperiments())
	fs := strings.Join(efs, "\n")
	for _, want := range []string{"timerfd thread instead of the runtime timer", "What made the difference", "refused 4/4",
		"adds 20 µs", "by hand", "not idle"} {
		if !strings.Contains(fs, want) {
			t.Errorf("findings lack %q:\n%s", want, fs)
		}
	}
	fs = strings.Join(findings(sampleResults()), "\n")
	for _, want := range []string{"not idle", "As used, machine as it is (200 pairs, the fast family won 200 of 200)",
		"By dial mode: " + modeBoth, "reported the winner's SYN-ACK for 150 of 200 pairs (4 busy processes)",
		"2 handshakes completed more than 20 µs before their instant",
		"SCHED_OTHER clock thread, 4 busy processes (releaseclock.RealTime off, 50 pairs): release p50 900 µs / p99 9.00 ms"} {
		if !strings.Contains(fs, want) {
			t.Errorf("findings lack %q:\n%s", want, fs)
		}
	}
}

func TestParseArgs(t *testing.T) {
	parts, o, err := parseArgs([]string{"-short"})
	if err != nil || o.Trials != 20 || !o.Short || len(o.Pairs) != 3 || len(parts) != 1 || parts[0].name != "headline" {
		t.Errorf("-short: %v %+v, %v; want the headline, 20 trials and the default pairs", parts, o, err)
	}
	parts, o, err = parseArgs([]string{"experiments", "-short", "-trials", "7", "-pairs", "1, 5", "-out", "x", "-only", "paths,clock"})
	if err != nil || o.Trials != 7 || o.Out != "x" || len(o.Pairs) != 2 || o.Pairs[1] != 5 || len(parts) != 1 || parts[0].name != "experiments" ||
		len(o.Only) != 2 {
		t.Errorf("explicit sizes: %v %+v, %v", parts, o, err)
	}
	if o.Command != "go run ./bench experiments -short -trials 7 -pairs 1, 5 -out x -only paths,clock" {
		t.Errorf("Command = %q", o.Command)
	}
	for _, tc := range []struct {
		args  []string
		parts []string
	}{
		{nil, []string{"headline"}},
		{[]string{"headline"}, []string{"headline"}},
		{[]string{"proxy", "-short"}, []string{"proxy"}},
		{[]string{"all", "-only", "used,paths"}, []string{"headline", "proxy", "experiments"}},
	} {
		parts, _, err := parseArgs(tc.args)
		var names []string
		for _, p := range parts {
			names = append(names, p.name)
		}
		if err != nil || strings.Join(names, ",") != strings.Join(tc.parts, ",") {
			t.Errorf("parseArgs(%q) = %v, %v; want parts %v", tc.args, names, err, tc.parts)
		}
	}
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"-pairs", "1,0"}, "-pairs"},
		{[]string{"-pairs", "x"}, "-pairs"},
		{[]string{"-trials", "1"}, "-trials"},
		{[]string{"extra"}, `unknown part "extra"`},
		{[]string{"-short", "extra"}, "unexpected arguments"},
		{[]string{"-only", "paths"}, `unknown step "paths"`}, // an experiment, not a headline step
		{[]string{"experiments", "-only", "used"}, `unknown step "used"`},
		{[]string{"proxy", "-only", "proxy"}, "no steps"},
	} {
		if _, _, err := parseArgs(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%q) = %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}

func TestLogCollectorKeepsAttributes(t *testing.T) {
	c := newLogCollector()
	log := slog.New(c).With("pair", 7)
	log.Debug("dropped")
	log.Info("syn seen", "client", "127.0.0.1:1", "syn_ms", 1.5)
	log.WithGroup("g").Warn("problem", "late_us", int64(3))
	if !c.Enabled(context.Background(), slog.LevelInfo) || c.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled: want Info and above only")
	}
	if n := c.count("syn seen"); n != 1 {
		t.Errorf("count = %d, want 1", n)
	}
	recs := c.take()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2 (debug dropped)", len(recs))
	}
	if r := recs[0]; r.Attrs["pair"].Int64() != 7 || r.Attrs["syn_ms"].Float64() != 1.5 || r.Attrs["client"].String() != "127.0.0.1:1" {
		t.Errorf("record attributes %v", r.Attrs)
	}
	if recs[1].Level != slog.LevelWarn || recs[1].Attrs["late_us"].Int64() != 3 {
		t.Errorf("second record %+v", recs[1])
	}
	if len(c.take()) != 0 {
		t.Error("take did not forget the records")
	}
}

func TestPlotSeriesLeavesOutRefusals(t *testing.T) {
	r := sampleExperiments()
	names := map[string]bool{}
	for _, s := range releaseSeries(r.Release) {
		names[s.Name] = true
	}
	if names["DelayedListen (the original's way)"] {
		t.Error("the refused row is plotted")
	}
	if !names["Replay, timerfd + spin (default)"] {
		t.Error("plot lacks the default path")
	}
	if names["timerfd + spin, GC off during the trial"] {
		t.Error("an experiment is in the main plot")
	}
	exps := map[string]bool{}
	for _, s := range experimentSeries(r) {
		exps[s.Name] = true
	}
	for _, want := range []string{"Replay, timerfd + spin (default)", "timerfd + spin, GC off during the trial", "by hand, under load"} {
		if !exps[want] {
			t.Errorf("experiment plot lacks %q", want)
		}
	}
	used := map[string]bool{}
	for _, s := range usedSeries(sampleResults()) {
		used[s.Name] = true
	}
	for _, want := range []string{"as used, machine as it is", "500 pairs at once in-process (fast side)"} {
		if !used[want] {
			t.Errorf("as-used plot lacks %q", want)
		}
	}
	if used["as used, machine as it is, "+modeBoth] {
		t.Error("a dial mode's row is plotted beside its case's")
	}
}
