package reconnect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/synhold/synhold/backoff"
	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
	"github.com/synhold/synhold/listener/capture"
)

// logBuffer is a bytes.Buffer safe for concurrent writers.
type logBuffer = logtest.Buffer

// harness is a Server with its control port on 127.0.0.1.
type harness struct {
	srv    *Server
	ctl    string
	log    *logBuffer // JSON log records
	report *logBuffer
}

// startServer starts a server with cfg; the log and the text reports go to
// buffers, the retry port opens at once so that its port is known.
func startServer(t *testing.T, cfg Config, listen func(string, string) (net.Listener, error)) *harness {
	t.Helper()
	h := &harness{log: &logBuffer{}, report: &logBuffer{}}
	cfg.Logger = slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Report = h.report
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ctl = ln.Addr().String()
	gs := grpc.NewServer()
	pb.RegisterReconnectServiceServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		gs.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", h.log.Bytes())
		}
	})
	if err := srv.openRetry(); err != nil {
		t.Fatal(err)
	}
	return h
}

// control returns a client of the control port on a connection of its own.
func (h *harness) control(t *testing.T) pb.ReconnectServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(h.ctl, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewReconnectServiceClient(cc)
}

// retry returns the retry address on 127.0.0.1.
func (h *harness) retry() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(h.srv.RetryPort()))
}

// run runs a grpc-go client with policy p for d and returns what it saw and
// the server's result.
func (h *harness) run(t *testing.T, p backoff.Policy, d time.Duration) (Run, Result) {
	t.Helper()
	c := Client{Control: h.ctl, Retry: h.retry(), MaxBackoffMs: int32(p.Max.Milliseconds()), Backoff: p, Deadline: d}
	run, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !run.RetryOK() {
		t.Fatalf("retry call ended with %v, want DeadlineExceeded", run.Retry.Err())
	}
	res := h.srv.Results()
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	if res[0].Passed != run.Info.GetPassed() || !slices.Equal(res[0].BackoffMs, run.Info.GetBackoffMs()) {
		t.Fatalf("Stop returned %v, the result says %t %v", run.Info, res[0].Passed, res[0].BackoffMs)
	}
	t.Logf("%s", h.report.Bytes())
	return run, res[0]
}

// records returns the log records with message msg.
func (h *harness) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(h.log.Bytes()))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log record %q: %v", sc.Bytes(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitRecords waits until the log holds n records of msg (a goroutine
// logged that it reached a state), for up to 10 s.
func (h *harness) waitRecords(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.records(t, msg)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d %q log records after 10 s, want %d", len(h.records(t, msg)), msg, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitingStart is what a Start that waits for the test in progress logs
// just before it blocks.
const waitingStart = "reconnect: Start waits for the test in progress to end"

// canCapture reports whether SYNs can be captured here, and why not.
func canCapture() (bool, error) {
	s, err := listener.Probe()
	return s == listener.Replay, err
}

// needCapture skips t unless SYNs can be captured.
func needCapture(t *testing.T) {
	t.Helper()
	_, err := canCapture()
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
}

// testPolicy is a client policy with max as both the client's cap and the
// server's.
func testPolicy(multiplier, jitter float64, max time.Duration) backoff.Policy {
	return backoff.Policy{Initial: time.Second, Multiplier: multiplier, Jitter: jitter, Max: max}
}

func TestStopWithoutStart(t *testing.T) {
	h := startServer(t, Config{}, nil)
	_, err := h.control(t).Stop(context.Background(), &pb.Empty{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no test in progress") {
		t.Fatalf("Stop without Start: %v, want FailedPrecondition saying no test is in progress", err)
	}
}

func TestStartRejectsNegativeMax(t *testing.T) {
	h := startServer(t, Config{}, nil)
	_, err := h.control(t).Start(context.Background(), &pb.ReconnectParams{MaxReconnectBackoffMs: -1})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Start with a negative max: %v, want InvalidArgument", err)
	}
	// and it did not take the test slot
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := h.control(t).Start(ctx, &pb.ReconnectParams{}); err != nil {
		t.Fatal(err)
	}
}

func TestSecondStartWaits(t *testing.T) {
	h := startServer(t, Config{}, nil)
	ctx := context.Background()
	first, waiter, second := h.control(t), h.control(t), h.control(t)
	if _, err := first.Start(ctx, &pb.ReconnectParams{}); err != nil {
		t.Fatal(err)
	}
	// A waiter that goes away gets its own deadline's error...
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	if _, err := waiter.Start(wctx, &pb.ReconnectParams{}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("waiting Start with a deadline: %v, want DeadlineExceeded", err)
	}
	if waited := time.Since(began); waited < 250*time.Millisecond {
		t.Fatalf("waiting Start returned after %v, before its deadline", waited)
	}
	// ...while another waits until the first test stops.
	done := make(chan error, 1)
	go func() {
		_, err := second.Start(ctx, &pb.ReconnectParams{})
		done <- err
	}()
	h.waitRecords(t, waitingStart, 2) // the waiter's, then the second's
	select {
	case err := <-done:
		t.Fatalf("second Start returned (%v) while the first test is in progress", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := first.Stop(ctx, &pb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Start still waits after the first test stopped")
	}
	if _, err := second.Stop(ctx, &pb.Empty{}); err != nil {
		t.Fatal(err)
	}
	// The waiter that went away left nothing behind: a new test starts at once.
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	if _, err := waiter.Start(sctx, &pb.ReconnectParams{}); err != nil {
		t.Fatalf("Start after every test stopped: %v", err)
	}
	if _, err := waiter.Stop(ctx, &pb.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := waiter.Stop(ctx, &pb.Empty{}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second Stop of one test: %v, want FailedPrecondition", err)
	}
	if n := len(h.srv.Results()); n != 3 {
		t.Fatalf("%d results, want 3", n)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	h := startServer(t, Config{}, nil)
	ctx := context.Background()
	if _, err := h.control(t).Start(ctx, &pb.ReconnectParams{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.control(t).Start(ctx, &pb.ReconnectParams{})
		done <- err
	}()
	h.waitRecords(t, waitingStart, 1)
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("waiting Start after Close: %v, want Unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Start not woken by Close")
	}
}

// TestSpecClient runs grpc-go with the spec's backoff: it passes,
// backoff_ms are the gaps of its SYNs in the pcap file (when SYNs can be
// captured), and SYN and accept times, both recorded, differ little.
func TestSpecClient(t *testing.T) {
	testenv.SkipIfShort(t, "grpc-go retrying for 18 s")
	t.Parallel()
	capture, why := canCapture()
	cfg := Config{}
	pcap := &logBuffer{}
	if capture {
		cfg.Pcap = pcap
	} else {
		t.Logf("SYN capture unavailable (%v): checking accept times only", why)
	}
	h := startServer(t, cfg, nil)
	_, res := h.run(t, testPolicy(1.6, 0.2, 3*time.Second), 18*time.Second)
	if !res.Passed {
		t.Fatal("a client with the spec's backoff failed")
	}
	if len(res.BackoffMs) < 6 {
		t.Fatalf("%d gaps in 18 s, want at least 6", len(res.BackoffMs))
	}
	primary, _ := res.Analysis.Primary()
	lines := h.records(t, "reconnect: attempt")
	if len(lines) != len(primary.Attempts) {
		t.Errorf("%d attempt log lines for %d attempts", len(lines), len(primary.Attempts))
	}
	// Each line's one "time" is its attempt's, to the nanosecond.
	for i := range min(len(lines), len(primary.Attempts)) {
		at := primary.Attempts[i]
		if got, want := lines[i]["time"], at.Time.Format(time.RFC3339Nano); got != want || lines[i]["src"] != at.Src.String() {
			t.Errorf("attempt line %d: time %v src %v, want %s %v", i, got, lines[i]["src"], want, at.Src)
		}
	}
	if n := bytes.Count(h.log.Bytes(), []byte(`"time":`)); n != bytes.Count(h.log.Bytes(), []byte("\n")) {
		t.Errorf("%d \"time\" keys in %d log lines: a line has two", n, bytes.Count(h.log.Bytes(), []byte("\n")))
	}
	if fin := h.records(t, "reconnect: test finished"); len(fin) != 1 || fin[0]["passed"] != true {
		t.Errorf("test summary records %v, want one that passed", fin)
	}
	if !capture {
		return
	}
	if res.Timestamps != SYN || res.SYN == nil || res.Accept == nil {
		t.Fatalf("timestamps %v, SYN analysis %t, accept analysis %t: want SYN times and both analyses",
			res.Timestamps, res.SYN != nil, res.Accept != nil)
	}
	t.Logf("SYN to accept: %s", res.Skew)
	if res.Skew.Attempts != len(primary.Attempts) || res.Skew.Max >= 50*time.Millisecond || res.Skew.Min < 0 {
		t.Errorf("SYN to accept %s over %d attempts; want every attempt, within [0, 50 ms)", res.Skew, len(primary.Attempts))
	}
	if p, _ := stopReply(*res.Accept); !p {
		t.Errorf("the accept times fail the client the SYN times pass")
	}
	gaps := pcapGaps(t, pcap.Bytes(), uint16(h.srv.RetryPort()))
	if !slices.Equal(gaps, res.BackoffMs) {
		t.Fatalf("backoff_ms %v, but the SYNs in the pcap file are %v apart", res.BackoffMs, gaps)
	}
}

// pcapGaps returns the gaps, in whole ms, between the first SYNs of the
// connections to port in a pcap file.
func pcapGaps(t *testing.T, file []byte, port uint16) []int32 {
	t.Helper()
	type key struct {
		src netip.AddrPort
		isn uint32
	}
	seen := map[key]bool{}
	var times []time.Time
	err := capture.ReadAll(bytes.NewReader(file), func(p capture.Packet) error {
		k := key{p.Src, p.Seq}
		if p.IsSYN() && p.Dst.Port() == port && !seen[k] {
			seen[k] = true
			times = append(times, p.Time)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var gaps []int32
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, int32(times[i].Sub(times[i-1]).Milliseconds()))
	}
	return gaps
}

// TestSpecBreakingClients runs grpc-go clients whose backoff breaks
// the spec in ways the reference rule catches, and one it does not.
func TestSpecBreakingClients(t *testing.T) {
	testenv.SkipIfShort(t, "three grpc-go clients retrying for 10-17 s")
	t.Parallel()
	for _, tc := range []struct {
		name   string
		policy backoff.Policy
		run    time.Duration
		passed bool
		check  func(t *testing.T, a backoff.Analysis)
	}{{
		// 1, 2, 4 s: the third gap, 3.2 s or more, is past 3.172 s.
		name: "multiplier 2", policy: testPolicy(2, 0.2, 10*time.Second), run: 17 * time.Second,
		check: func(t *testing.T, a backoff.Analysis) {
			s, _ := a.Primary()
			if len(s.Gaps) < 3 || s.Gaps[2].Verdict != backoff.Late {
				t.Errorf("gaps %+v: want the third late", s.Gaps)
			}
			t.Logf("fitted multiplier %.3f, WrongMultiplier flagged: %t", s.Fit.Multiplier, s.Has(backoff.WrongMultiplier))
		},
	}, {
		// Gaps of 1 s ± 20%: the second, at most 1.2 s, is barely in range,
		// the third never is.
		name: "constant gaps", policy: testPolicy(1, 0.2, 3*time.Second), run: 10 * time.Second,
		check: func(t *testing.T, a backoff.Analysis) {
			s, _ := a.Primary()
			if len(s.Gaps) < 5 || s.Gaps[2].Verdict != backoff.Early {
				t.Errorf("gaps %+v: want at least 5, the third early", s.Gaps)
			}
		},
	}, {
		name: "no jitter", policy: testPolicy(1.6, 0, 3*time.Second), run: 16 * time.Second, passed: true,
		check: func(t *testing.T, a backoff.Analysis) {
			if !a.Has(backoff.NoJitter) {
				t.Errorf("a client without jitter not flagged NoJitter: %+v", a.Series)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t, Config{}, nil)
			_, res := h.run(t, tc.policy, tc.run)
			if res.Passed != tc.passed {
				t.Fatalf("passed = %t, want %t", res.Passed, tc.passed)
			}
			tc.check(t, res.Analysis)
		})
	}
}

// TestStallRetransmittedSYN holds each handshake 1.5 s, so that
// the client's kernel sends its SYN again after 1 s: one attempt each.
func TestStallRetransmittedSYN(t *testing.T) {
	testenv.SkipIfShort(t, "grpc-go retrying for 9 s against held handshakes")
	needCapture(t)
	t.Parallel()
	const stall = 1500 * time.Millisecond
	h := startServer(t, Config{Stall: stall, Timestamps: SYN}, nil)
	_, res := h.run(t, testPolicy(1.6, 0.2, 3*time.Second), 9*time.Second)
	a := res.Analysis
	s, ok := a.Primary()
	if !ok || len(s.Attempts) < 2 {
		t.Fatalf("%d attempts, want at least 2", len(s.Attempts))
	}
	var retx int
	type key struct {
		src netip.AddrPort
		isn uint32
	}
	kept := map[key]bool{}
	for _, at := range s.Attempts {
		kept[key{at.Src, at.ISN}] = true
	}
	if len(kept) != len(s.Attempts) {
		t.Fatalf("%d attempts for %d connections", len(s.Attempts), len(kept))
	}
	for _, rm := range a.Removed {
		if rm.Reason != backoff.Retransmission || !kept[key{rm.Attempt.Src, rm.Attempt.ISN}] {
			t.Fatalf("removed %+v: want only retransmissions of kept attempts", rm)
		}
		retx++
	}
	if retx < len(s.Attempts)-1 {
		t.Fatalf("%d retransmitted SYNs for %d attempts held %v: want about one each", retx, len(s.Attempts), stall)
	}
	if n := len(h.records(t, "reconnect: retransmitted SYN, not an attempt")); n != retx {
		t.Errorf("%d retransmission log lines for %d retransmissions", n, retx)
	}
	t.Logf("%d attempts, %d retransmitted SYNs; SYN to accept %s", len(s.Attempts), retx, res.Skew)
	if res.Skew.P50 < stall || res.Skew.P50 > stall+100*time.Millisecond {
		t.Errorf("SYN to accept %s, want about the stall, %v", res.Skew, stall)
	}
	// grpc-go times its backoff from the failure: the stall adds to the
	// first gap, 1 s unjittered (timed from the start, it would be the stall).
	if g := s.Gaps[0]; g.Got < stall+900*time.Millisecond || g.Got > stall+1300*time.Millisecond {
		t.Errorf("first gap %v, want the stall plus the 1 s backoff", g.Got)
	}
}

// TestCrossFamily reaches the control port over IPv4 and the retry
// port over IPv6: a loopback client is every loopback address.
func TestCrossFamily(t *testing.T) {
	t.Parallel()
	h := startServer(t, Config{}, nil)
	retry := net.JoinHostPort("::1", strconv.Itoa(h.srv.RetryPort()))
	c := Client{Control: h.ctl, Retry: retry, MaxBackoffMs: 3000, Deadline: 5 * time.Second}
	run, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := h.srv.Results()[0]
	s, _ := res.Analysis.Primary()
	if !run.Info.GetPassed() || len(res.Analysis.Removed) != 0 || s.Dst.Addr() != netip.IPv6Loopback() {
		t.Fatalf("passed %t, removed %v, series to %v: want passed, nothing removed, attempts to ::1",
			run.Info.GetPassed(), res.Analysis.Removed, s.Dst)
	}
}

// TestTwoAddresses gives grpc-go both ::1 and 127.0.0.1 for the
// retry port, as a resolver of "localhost" may: each address keeps its own
// backoff, so the client passes per address and the analysis says the
// addresses interleave.
func TestTwoAddresses(t *testing.T) {
	testenv.SkipIfShort(t, "grpc-go retrying for 10 s")
	t.Parallel()
	h := startServer(t, Config{}, nil)
	port := strconv.Itoa(h.srv.RetryPort())
	r := manual.NewBuilderWithScheme("rctwo")
	r.InitialState(resolver.State{Addresses: []resolver.Address{
		{Addr: net.JoinHostPort("::1", port)}, {Addr: net.JoinHostPort("127.0.0.1", port)},
	}})
	c := Client{Control: h.ctl, Retry: "rctwo:///retry", MaxBackoffMs: 3000, Deadline: 10 * time.Second,
		RetryOptions: []grpc.DialOption{grpc.WithResolvers(r)}}
	run, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", h.report.Bytes())
	res := h.srv.Results()[0]
	a := res.Analysis
	if len(a.Series) != 2 {
		t.Fatalf("%d series, want one per address", len(a.Series))
	}
	if !run.Info.GetPassed() || a.MergedReferencePassed || !a.Has(backoff.InterleavedAddresses) {
		t.Fatalf("passed %t, merged %t, interleaved %t: want passed per address, failed merged, interleaved flagged",
			run.Info.GetPassed(), a.MergedReferencePassed, a.Has(backoff.InterleavedAddresses))
	}
}

// TestTooFewAttempts stops a test after one connection to the retry port,
// as gRPC's unmodified C++ client does when its first retry fails: Stop
// answers passed=false, with TooFewAttempts as the reason and the reference
// server's own verdict (passed, no gaps) beside it, in the result, the log
// and the report files.
func TestTooFewAttempts(t *testing.T) {
	dir := t.TempDir()
	h := startServer(t, Config{ReportDir: dir}, nil)
	ctl := h.control(t)
	ctx := context.Background()
	if _, err := ctl.Start(ctx, &pb.ReconnectParams{MaxReconnectBackoffMs: 3000}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", h.retry())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Wait until the attempt is recorded, by SYN or accept.
	deadline := time.Now().Add(10 * time.Second)
	for len(h.records(t, "reconnect: attempt")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt was not recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	info, err := ctl.Stop(ctx, &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	res := h.srv.Results()[0]
	if info.GetPassed() || len(info.GetBackoffMs()) != 0 {
		t.Errorf("Stop returned %v, want passed=false and no gaps", info)
	}
	if res.Reason == nil || res.Reason.Kind != backoff.TooFewAttempts ||
		!strings.HasPrefix(res.Reason.Detail, "the client made 1 attempt in ") || !strings.Contains(res.Reason.Detail, "it stopped retrying or never started") {
		t.Errorf("reason %+v, want TooFewAttempts: the client made 1 attempt in D; it stopped retrying or never started", res.Reason)
	}
	if !res.ReferencePassed || res.ReferenceBackoffMs == nil || len(res.ReferenceBackoffMs) != 0 {
		t.Errorf("reference verdict %t %v, want passed with no gaps, as the reference server answers", res.ReferencePassed, res.ReferenceBackoffMs)
	}
	recs := h.records(t, "reconnect: test finished")
	if len(recs) != 1 || recs[0]["passed"] != false || recs[0]["reason"] != "TooFewAttempts" || recs[0]["reference_passed"] != true {
		t.Errorf("log record %v, want passed false, reason TooFewAttempts, reference_passed true", recs)
	}
	for _, want := range []string{"ReconnectInfo: passed=false backoff_ms=[]",
		"the reference server's ReconnectInfo on the same attempts: passed=true backoff_ms=[]", "why: TooFewAttempts: the client made 1 attempt"} {
		if !strings.Contains(string(h.report.Bytes()), want) {
			t.Errorf("report lacks %q:\n%s", want, h.report.Bytes())
		}
	}
	files, _ := recs[0]["report_files"].([]any)
	if len(files) != 2 {
		t.Fatalf("report files %v, want a JSON and an SVG", recs[0]["report_files"])
	}
	js, err := os.ReadFile(files[0].(string))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Passed          bool `json:"passed"`
		ReferencePassed bool `json:"reference_passed"`
		Reason          struct {
			Kind string `json:"kind"`
		} `json:"reason"`
	}
	if err := json.Unmarshal(js, &v); err != nil || v.Passed || !v.ReferencePassed || v.Reason.Kind != "TooFewAttempts" {
		t.Errorf("report JSON %s: %v, %+v", files[0], err, v)
	}
	svg, err := os.ReadFile(files[1].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(files[1].(string), ".svg") || strings.Count(string(svg), `class="attempt`) != 1 {
		t.Errorf("SVG %s has %d attempt marks, want 1", files[1], strings.Count(string(svg), `class="attempt`))
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Errorf("SVG is not well-formed: %v", err)
	}
}

// TestReportDirUnwritable checks that a report directory that cannot be
// written is logged and the server goes on.
func TestReportDirUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := startServer(t, Config{ReportDir: file}, nil)
	ctl := h.control(t)
	ctx := context.Background()
	for range 2 {
		if _, err := ctl.Start(ctx, &pb.ReconnectParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Stop(ctx, &pb.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.records(t, "reconnect: writing the report files failed; the server goes on")); n != 2 {
		t.Errorf("%d failures logged, want 2", n)
	}
}
