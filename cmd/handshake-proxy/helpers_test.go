package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
)

var (
	binOnce sync.Once
	binDir  string // world-readable (the binary runs as nobody too), removed by TestMain
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds the command once per test binary, into a directory
// every user can enter, and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	goCmd := testenv.GoCommand(t) // outside Do: a skip there would leave it done without a binary
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "handshake-proxy-test-"); binErr != nil {
			return
		}
		if binErr = os.Chmod(binDir, 0o755); binErr != nil {
			return
		}
		if out, err := exec.Command(goCmd, "build", "-o", filepath.Join(binDir, "handshake-proxy"), ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "handshake-proxy")
}

// echoUpstream is an upstream on loopback that echoes what it reads; it
// closes with the test.
func echoUpstream(t *testing.T) string {
	t.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return up.Addr().String()
}

// startBinary starts cmd, the binary with --log-format json, and returns the
// API's address once the binary logs it, its log as it grows, and a channel
// closed when the log ends (the process closed its stderr).
func startBinary(t *testing.T, cmd *exec.Cmd) (api string, logs *syncBuffer, ended <-chan struct{}) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs = new(syncBuffer)
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "API listening" {
				addr <- rec.Addr
			}
		}
	}()
	select {
	case api = <-addr:
	case <-time.After(15 * time.Second):
		t.Fatalf("no API after 15 s:\n%s", logs)
	}
	return api, logs, done
}
