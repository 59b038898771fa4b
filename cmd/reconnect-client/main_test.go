package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	pb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/synhold/synhold/broker/reconnect"
	"github.com/synhold/synhold/internal/testenv"
)

// serve starts a reconnect server and returns its control and retry ports.
func serve(t *testing.T) (control, retry int) {
	t.Helper()
	retry = testenv.FreePort(t)
	srv, err := reconnect.NewServer(reconnect.Config{RetryPort: retry, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterReconnectServiceServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		gs.Stop()
	})
	return ln.Addr().(*net.TCPAddr).Port, retry
}

// runClient runs the command and returns its exit code and output.
func runClient(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--server_control_port", "1"},
		{"--server_control_port", "1", "--server_retry_port", "2", "--jitter", "1"},
		{"--server_control_port", "1", "--server_retry_port", "2", "--deadline", "0s"},
		{"--server_control_port", "1", "--server_retry_port", "2", "--max_reconnect_backoff_ms", "-1"},
	} {
		if code, _, errs := runClient(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errs)
		}
	}
}

func TestNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	code, _, errs := runClient(t, "--server_host", "127.0.0.1", "--server_control_port", port, "--server_retry_port", port)
	if code != 1 || !strings.Contains(errs, "Start") {
		t.Fatalf("exit %d, stderr %q: want 1 and the failed Start", code, errs)
	}
}

// TestClients runs the command with gRPC's backoff, which passes, and with a
// multiplier of 2, which both the server and the client's own check fail.
func TestClients(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"spec", []string{"--max_reconnect_backoff_ms", "3000", "--deadline", "7s"}, 0,
			[]string{"server: passed", "client check of backoff_ms: passed", "PASSED"}},
		{"multiplier 2", []string{"--max_reconnect_backoff_ms", "10000", "--deadline", "9s", "--multiplier", "2"}, 1,
			[]string{"server: failed", "client check of backoff_ms: failed", "late", "FAILED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code != 0 {
				testenv.SkipIfShort(t, "a second client retrying for 9 s (the spec client runs)")
			}
			t.Parallel()
			control, retry := serve(t)
			args := append([]string{"--server_host", "127.0.0.1", "--server_control_port", strconv.Itoa(control),
				"--server_retry_port", strconv.Itoa(retry)}, tc.args...)
			code, out, errs := runClient(t, args...)
			t.Logf("\n%s", out)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errs)
			}
			for _, s := range append(tc.want, "retry call: DeadlineExceeded") {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
		})
	}
}
