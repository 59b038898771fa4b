package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// Test pair delays: short, far enough apart for a loaded machine.
var testDelays = []string{"--fast-delay", "400ms", "--slow-delay", "1300ms"}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer = logtest.Buffer

// records decodes the JSON log lines whose msg is msg.
func records(log, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// runResult is how an in-process run ended.
type runResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runNow runs the program in-process to completion.
func runNow(args ...string) runResult {
	var out, errb syncBuffer
	start := time.Now()
	code := run(context.Background(), args, &out, &errb)
	return runResult{code, out.String(), errb.String(), time.Since(start)}
}

// testServer is a server run in-process (testenv.StartRun), its log on
// Stderr.
type testServer struct {
	*testenv.Run
	port int
}

// startServer runs a server on a free port with JSON logs, waits until it
// answers, and stops it when the test ends.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	port := testenv.FreePort(t)
	s := &testServer{testenv.StartRun(t, run, append([]string{"-c", strconv.Itoa(port), "--log-format", "json"}, args...)...), port}
	if r := runNow("-c", strconv.Itoa(s.port), "--wait", "--timeout", "10s"); r.code != 0 {
		t.Fatalf("--wait: exit %d: %s%s\nserver log:\n%s", r.code, r.stdout, r.stderr, s.Stderr)
	}
	return s
}

// startLine returns the server's start-up log line.
func startLine(t *testing.T, log string) map[string]any {
	t.Helper()
	rs := records(log, "happy eyeballs server ready")
	if len(rs) != 1 {
		t.Fatalf("%d start-up lines, want 1; log:\n%s", len(rs), log)
	}
	return rs[0]
}

// askPair requests a pair on the control port and returns the two
// addresses with when the request was sent and answered.
func askPair(t *testing.T, port int, b byte) (addr4, addr6 string, sent, replied time.Time) {
	t.Helper()
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	sent = time.Now()
	c.Write([]byte{b})
	reply, err := io.ReadAll(c)
	replied = time.Now()
	if err != nil || len(reply) != 5 || reply[0] != 0x01 {
		t.Fatalf("0x%02x: reply % x, %v", b, reply, err)
	}
	addr4 = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(binary.BigEndian.Uint16(reply[1:]))))
	addr6 = net.JoinHostPort("::1", strconv.Itoa(int(binary.BigEndian.Uint16(reply[3:]))))
	return addr4, addr6, sent, replied
}

// connectNotEarly dials addr and checks the handshake completed no earlier
// than delay after sent, and at most delay+slack after replied; it returns
// the byte read.
func connectNotEarly(t *testing.T, network, addr string, sent, replied time.Time, delay, slack time.Duration) byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	at := time.Now()
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	t.Logf("%s connected %v after the request, %v after the reply (asked %v)",
		network, at.Sub(sent).Round(time.Microsecond), at.Sub(replied).Round(time.Microsecond), delay)
	if at.Sub(sent) < delay {
		t.Errorf("handshake completed %v after the request, before the instant (%v)", at.Sub(sent), delay)
	}
	if at.Sub(replied) > delay+slack {
		t.Errorf("handshake completed %v after the reply, want <= %v", at.Sub(replied), delay+slack)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatalf("read family byte: %v", err)
	}
	return b[0]
}

func refused(port int) bool {
	_, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	return errors.Is(err, syscall.ECONNREFUSED)
}

// needHold skips a test whose server must hold handshakes with strategy
// name, where this process cannot.
func needHold(t *testing.T, name string) {
	t.Helper()
	s, _, err := resolveStrategy(name)
	if err == nil || s != listener.Auto {
		_, err = checkHold(s)
	}
	capability := "CAP_NET_RAW"
	if name != "replay" {
		capability = "CAP_NET_ADMIN (this kernel refuses the SYN-holding socket filter without it)"
	}
	testenv.SkipWithoutPrivilege(t, err, capability)
}

func TestWaitAndStop(t *testing.T) {
	// delayed-listen needs no privilege, and no pair is asked for.
	s := startServer(t, append([]string{"--strategy", "delayed-listen"}, testDelays...)...)
	port := strconv.Itoa(s.port)
	steps := []struct {
		name string
		args []string
		want string
	}{
		{"wait", []string{"-c", port, "--wait"}, "is ready"},
		{"stop", []string{"--control", port, "--stop"}, "stopped"},
		{"stop again", []string{"-c", port, "--stop"}, "no happy eyeballs server running"},
	}
	for _, st := range steps {
		r := runNow(st.args...)
		if r.code != 0 || !strings.Contains(r.stdout, st.want) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 0 and %q", st.name, r.code, r.stdout, r.stderr, st.want)
		}
		if st.name == "stop" {
			if code := s.Wait(t); code != 0 {
				t.Errorf("server exited %d after --stop, want 0", code)
			}
			if !refused(s.port) {
				t.Error("control port still open after --stop returned")
			}
		}
	}
}

func TestWaitWithoutServerTimesOut(t *testing.T) {
	port := strconv.Itoa(testenv.FreePort(t))
	r := runNow("-c", port, "--wait", "--timeout", "500ms")
	if r.code == 0 || !strings.Contains(r.stderr, "no server answered on 127.0.0.1:"+port+" within 500ms") {
		t.Errorf("exit %d, stderr %q; want non-zero and a clear message", r.code, r.stderr)
	}
	if r.took < 500*time.Millisecond || r.took > 3*time.Second {
		t.Errorf("--wait --timeout 500ms took %v", r.took)
	}
}

func TestSignalShutsDown(t *testing.T) {
	s := startServer(t, "--strategy", "delayed-listen")
	if code := s.Stop(t); code != 0 {
		t.Errorf("exit %d after the signal, want 0", code)
	}
	if !strings.Contains(s.Stderr.String(), "signal received") || !refused(s.port) {
		t.Errorf("no clean shutdown; log:\n%s", s.Stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--strategy", "bogus"},
		{"--fast-delay", "2s", "--slow-delay", "1s"},
		{"-c", "70000"},
		{"--wait", "--stop"},
		{"--log-format", "xml"},
		{"--timeout", "0s", "--wait"},
		{"stray"},
		{"--no-such-flag"},
		{"--spares", "-1"},
	} {
		if r := runNow(args...); r.code != 2 || r.stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
}

func TestControlPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if r := runNow("-c", port, "--strategy", "delayed-listen"); r.code != 1 || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and the bind error", r.code, r.stderr)
	}
}

func TestStrategyReported(t *testing.T) {
	probed, _ := listener.Probe()
	autoWhy := "replay: held SYNs are captured"
	if probed == listener.Retransmit {
		autoWhy = "retransmit: capture needs CAP_NET_RAW"
	}
	for _, tc := range []struct {
		flag, want, why string
	}{
		{"auto", probed.String(), autoWhy},
		{"retransmit", "retransmit", "retransmit (forced by --strategy): handshakes complete at the client's first SYN retransmission"},
		{"delayed-listen", "delayed-listen", "delayed-listen (forced by --strategy): listen(2) is called at the instant"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			needHold(t, tc.flag)
			s := startServer(t, "--strategy", tc.flag)
			line := startLine(t, s.Stderr.String())
			if line["strategy"] != tc.want || !strings.HasPrefix(line["why"].(string), tc.why) {
				t.Errorf("start-up line says strategy %v, why %q; want %s, %q...", line["strategy"], line["why"], tc.want, tc.why)
			}
			if c := line["control"].([]any); len(c) != 2 || !strings.HasPrefix(c[1].(string), "[::1]:") {
				t.Errorf("control addresses %v, want 127.0.0.1 and ::1", c)
			}
			wantHold := map[string]string{"delayed-listen": "delayed listen"}[tc.want]
			if h, _ := line["hold"].(string); wantHold != "" && h != wantHold || wantHold == "" && h != "bpf filter" && h != "full accept queue" {
				t.Errorf("start-up line says hold %q", line["hold"])
			}
			clock, _ := line["clock"].(string)
			_, why := line["clock_why"]
			switch {
			case runtime.GOOS != "linux" && line["clock"] != nil:
				t.Errorf("start-up line says clock %v on %s", line["clock"], runtime.GOOS)
			case runtime.GOOS == "linux" && clock != "SCHED_FIFO 10" && (!strings.HasPrefix(clock, "SCHED_") || !why):
				t.Errorf("start-up line says clock %q (why %v); want SCHED_FIFO 10, or another policy and why", clock, line["clock_why"])
			}
		})
	}
}

func TestForcedRetransmitStillWorks(t *testing.T) {
	needHold(t, "retransmit")
	s := startServer(t, append([]string{"--strategy", "retransmit"}, testDelays...)...)
	_, addr6, sent, replied := askPair(t, s.port, 0x04)
	if b := connectNotEarly(t, "tcp6", addr6, sent, replied, 400*time.Millisecond, 2250*time.Millisecond); b != 0x06 {
		t.Errorf("read 0x%02x, want 0x06", b)
	}
	rs := records(s.Stderr.String(), "pair requested") // logged before the reply was sent
	if len(rs) != 1 || rs[0]["strategy"] != "retransmit" {
		t.Errorf("pair log lines %v, want one with strategy retransmit", rs)
	}
}
