package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/synhold/synhold/broker/reconnect"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener/capture"
)

// start runs the command in-process (testenv.StartRun) with args and
// --control_port 0, and returns the run and its control address once the
// command has printed it.
func start(t *testing.T, args ...string) (*testenv.Run, string) {
	t.Helper()
	r := testenv.StartRun(t, run, append([]string{"--control_port", "0"}, args...)...)
	testenv.WaitFor(t, 10*time.Second, "the control address on stdout", func() bool {
		return strings.Contains(r.Stdout.String(), "\n") || r.Exited()
	})
	line, _, _ := strings.Cut(r.Stdout.String(), "\n")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(line, "control "))
	if err != nil {
		t.Fatalf("stdout %q: %v; stderr:\n%s", line, err, r.Stderr)
	}
	return r, net.JoinHostPort("127.0.0.1", port)
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "xml"},
		{"--retry_port", "70000"},
		{"--control_port", "8080", "--retry_port", "8080"},
		{"--timestamps", "ack"},
		{"extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--retry_port") && !strings.Contains(errb.String(), "-retry_port") {
		t.Errorf("-h: exit %d, usage %q", code, errb.String())
	}
}

func TestStopWithoutStart(t *testing.T) {
	s, ctl := start(t, "--retry_port", "0")
	cc, err := grpc.NewClient(ctl, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = pb.NewReconnectServiceClient(cc).Stop(context.Background(), &pb.Empty{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Stop without Start: %v, want FailedPrecondition", err)
	}
	if code := s.Stop(t); code != 0 {
		t.Fatalf("exit %d after the signal, want 0", code)
	}
}

// TestServe runs a conformant grpc-go client against the command, with
// text and JSON logs, and the pcap file when SYNs can be captured.
func TestServe(t *testing.T) {
	testenv.SkipIfShort(t, "two grpc-go clients retrying for 6 s, side by side (broker/reconnect's TestCrossFamily keeps a client run)")
	probe, err := reconnect.NewServer(reconnect.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, canCapture := probe.Timestamps()
	probe.Close()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			retry := testenv.FreePort(t)
			reports := filepath.Join(t.TempDir(), "reports")
			args := []string{"--retry_port", strconv.Itoa(retry), "--log-format", format, "--report", reports}
			pcap := filepath.Join(t.TempDir(), "retry.pcap")
			if canCapture {
				args = append(args, "--pcap", pcap, "--timestamps", "syn")
			}
			s, ctl := start(t, args...)
			c := reconnect.Client{Control: ctl, Retry: net.JoinHostPort("127.0.0.1", strconv.Itoa(retry)),
				MaxBackoffMs: 3000, Deadline: 6 * time.Second}
			r, err := c.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !r.RetryOK() || !r.Info.GetPassed() || len(r.Info.GetBackoffMs()) < 2 {
				t.Fatalf("retry %v, info %v: want DeadlineExceeded, passed, 2 gaps or more", r.Retry.Err(), r.Info)
			}
			if code := s.Stop(t); code != 0 {
				t.Fatalf("exit %d, want 0", code)
			}
			logs := s.Stderr.String()
			if format == "json" {
				checkJSONLog(t, logs)
			} else if !strings.Contains(logs, "ReconnectInfo: passed=true") || !strings.Contains(logs, `msg="reconnect: timestamps"`) {
				t.Fatalf("text log lacks the report or the timestamps line:\n%s", logs)
			}
			if canCapture {
				checkPcap(t, pcap, retry, len(r.Info.GetBackoffMs())+1)
			}
			// --report: the test's result as JSON and its picture.
			for _, pattern := range []string{"test-1-*.json", "test-1-*.svg"} {
				m, _ := filepath.Glob(filepath.Join(reports, pattern))
				if len(m) != 1 {
					t.Fatalf("--report %s: %v, want one %s", reports, m, pattern)
				}
				b, err := os.ReadFile(m[0])
				if err != nil {
					t.Fatal(err)
				}
				if want := len(r.Info.GetBackoffMs()) + 1; strings.HasSuffix(m[0], ".svg") && strings.Count(string(b), `class="attempt`) != want {
					t.Errorf("%s: %d attempt marks, want %d", m[0], strings.Count(string(b), `class="attempt`), want)
				}
			}
		})
	}
}

// checkJSONLog checks that every line is JSON and that the test's record
// holds its whole result.
func checkJSONLog(t *testing.T, logs string) {
	t.Helper()
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec struct {
			Msg    string          `json:"msg"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec.Msg == "reconnect: test finished" {
			found = bytes.Contains(rec.Result, []byte(`"passed":true`)) && bytes.Contains(rec.Result, []byte(`"series":[`))
		}
	}
	if !found {
		t.Fatalf("no test record with the result:\n%s", logs)
	}
}

// checkPcap checks that the pcap file holds one SYN to port per attempt,
// each answered by a SYN-ACK.
func checkPcap(t *testing.T, file string, port, attempts int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var syns, synacks int
	err = capture.ReadAll(bytes.NewReader(b), func(p capture.Packet) error {
		switch {
		case p.IsSYN() && int(p.Dst.Port()) == port:
			syns++
		case p.IsSYNACK() && int(p.Src.Port()) == port:
			synacks++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if syns != attempts || synacks != attempts {
		t.Fatalf("pcap: %d SYNs, %d SYN-ACKs; want %d of each", syns, synacks, attempts)
	}
}
