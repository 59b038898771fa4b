package main

import (
	"bufio"
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
	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener/capture"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = logtest.Buffer

// server is a run of the command.
type server struct {
	ctl    string // control address on 127.0.0.1
	stderr *syncBuffer
	cancel context.CancelFunc
	code   chan int
}

// start runs the command with args (and --control_port 0) until stop.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{stderr: &syncBuffer{}, cancel: cancel, code: make(chan int, 1)}
	go func() {
		s.code <- run(ctx, append([]string{"--control_port", "0"}, args...), pw, s.stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no control address on stdout (%v); stderr:\n%s", err, s.stderr)
	}
	go io.Copy(io.Discard, pr)
	_, port, err := net.SplitHostPort(strings.TrimSpace(strings.TrimPrefix(line, "control ")))
	if err != nil {
		t.Fatalf("stdout %q: %v", line, err)
	}
	s.ctl = net.JoinHostPort("127.0.0.1", port)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", s.stderr)
		}
	})
	return s
}

// stop ends the run as a signal would and returns its exit code.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.code:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
		return -1
	}
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
	s := start(t, "--retry_port", "0")
	cc, err := grpc.NewClient(s.ctl, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = pb.NewReconnectServiceClient(cc).Stop(context.Background(), &pb.Empty{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Stop without Start: %v, want FailedPrecondition", err)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("exit %d after the signal, want 0", code)
	}
}

// TestServe runs a conformant grpc-go client against the command, with
// text and JSON logs, and the pcap file when SYNs can be captured.
func TestServe(t *testing.T) {
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
			s := start(t, args...)
			c := reconnect.Client{Control: s.ctl, Retry: net.JoinHostPort("127.0.0.1", strconv.Itoa(retry)),
				MaxBackoffMs: 3000, Deadline: 6 * time.Second}
			r, err := c.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !r.RetryOK() || !r.Info.GetPassed() || len(r.Info.GetBackoffMs()) < 2 {
				t.Fatalf("retry %v, info %v: want DeadlineExceeded, passed, 2 gaps or more", r.Retry.Err(), r.Info)
			}
			if code := s.stop(t); code != 0 {
				t.Fatalf("exit %d, want 0", code)
			}
			logs := s.stderr.String()
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
