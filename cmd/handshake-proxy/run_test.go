package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(options) bool
	}{
		{nil, "", func(o options) bool { return o.host == "localhost" && o.port == "8474" && o.logFormat == "text" }},
		{[]string{"-host", "0.0.0.0", "-port", "9000", "-config", "x.json", "--log-format", "json", "-seed", "7"}, "",
			func(o options) bool {
				return o.host == "0.0.0.0" && o.port == "9000" && o.config == "x.json" && o.logFormat == "json" && o.seed == 7
			}},
		{[]string{"--log-format", "xml"}, `--log-format "xml"`, nil},
		{[]string{"--strategy", "sideways"}, "--strategy", nil},
		{[]string{"--strategy", "delayed-listen"}, "cannot hold", nil},
		{[]string{"extra"}, "unexpected arguments", nil},
	}
	for _, tt := range tests {
		o, err := parseArgs(tt.args, io.Discard)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: err %v, want %q", tt.args, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.check != nil && !tt.check(o):
			t.Errorf("%q: parsed %+v", tt.args, o)
		}
	}
}

type syncBuffer = logtest.Buffer

// startRun runs the program in-process (testenv.StartRun) with args and
// returns the run and its API's address once it serves.
func startRun(t *testing.T, args ...string) (*testenv.Run, net.Addr) {
	t.Helper()
	addr := make(chan net.Addr, 1)
	r := testenv.StartRun(t, func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return run(ctx, args, stdout, stderr, func(a net.Addr) { addr <- a })
	}, args...)
	var a net.Addr
	testenv.WaitFor(t, 10*time.Second, "the API to serve", func() bool {
		select {
		case a = <-addr:
			return true
		default:
			return r.Exited()
		}
	})
	if a == nil {
		t.Fatalf("exited %d before the API served:\n%s", r.Wait(t), r.Stderr)
	}
	return r, a
}

// TestRun runs the program in-process: populate from -config, serve the
// API on a picked port, forward, log JSON, shut down on cancel.
func TestRun(t *testing.T) {
	up := echoUpstream(t)
	cfg := filepath.Join(t.TempDir(), "proxies.json")
	conf, _ := json.Marshal([]map[string]any{{"name": "echo", "listen": "127.0.0.1:0", "upstream": up}})
	if err := os.WriteFile(cfg, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	r, a := startRun(t, "-host", "127.0.0.1", "-port", "0", "-config", cfg, "--log-format", "json")
	logs := r.Stderr
	client := toxiclient.NewClient(a.String())
	p, err := client.Proxy("echo")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hi"))
	got := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
		t.Fatalf("echo: %q %v", got, err)
	}
	c.Close()
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	if _, err := net.DialTimeout("tcp", p.Listen, time.Second); err == nil {
		t.Fatal("the proxy still listens after shutdown")
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		if ts, _ := rec["time"].(string); !strings.Contains(ts, ".") {
			t.Fatalf("time %q without sub-second digits", ts)
		}
	}
	for _, want := range []string{"populated proxies", "API listening", "proxy started", "proxy stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs)
		}
	}
}

// TestRunBadConfig: a config file that does not parse is logged and the API
// still serves, as toxiproxy-server does.
func TestRunBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(cfg, []byte(`[{"name":"x"}]`), 0o644)
	r, a := startRun(t, "-host", "127.0.0.1", "-port", "0", "-config", cfg)
	logs := r.Stderr
	if _, err := toxiclient.NewClient(a.String()).Proxies(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "missing required field: upstream at proxy 1") {
		t.Errorf("the bad config is not explained:\n%s", logs)
	}
}

func TestLogLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("json", "DEBUG", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("x")
	if !strings.Contains(buf.String(), `"level":"DEBUG"`) {
		t.Fatalf("LOG_LEVEL=DEBUG: %q", buf.String())
	}
	if _, err := newLogger("text", "loud", io.Discard); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("LOG_LEVEL=loud: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-version"}, &out, io.Discard, nil); code != 0 || !strings.HasPrefix(out.String(), "handshake-proxy version ") ||
		!strings.Contains(out.String(), "toxiproxy API version 2.12.0") {
		t.Fatalf("exit %d, %q", code, out.String())
	}
}
