package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
)

// TestMain removes the binary that TestAsNobody and TestSIGTERM build
// (testenv.BuildBinary).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// echoUpstream is an upstream on loopback that echoes what it reads; it
// closes with the test.
func echoUpstream(t *testing.T) string {
	t.Helper()
	return testenv.Serve(t, "tcp4", "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c); c.Close() }).String()
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
