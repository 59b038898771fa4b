package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
	"golang.org/x/sys/unix"
)

// needRoot skips a test that must change user.
func needRoot(t *testing.T) {
	t.Helper()
	testenv.SkipUnlessRoot(t, "CAP_SETUID and CAP_SETGID (runs the server binary as user nobody, uid 65534, to take CAP_NET_RAW away)")
}

// nobodyCase is one way of running the server binary without CAP_NET_RAW.
type nobodyCase struct {
	name    string
	ambient []uintptr // capabilities nobody keeps
	// mayRefuse allows the server to refuse to start, saying why: some
	// kernels (this project's VMs among them) refuse SO_ATTACH_FILTER, and
	// so any held listener, without CAP_NET_ADMIN.
	mayRefuse bool
}

func TestBinaryAsNobodyFallsBackToRetransmit(t *testing.T) {
	testenv.SkipIfShort(t, "builds the binary, then two pairs as nobody completing at SYN retransmissions 1 s apart: 6-8 s")
	needRoot(t)
	bin := testenv.BuildBinary(t, ".")
	for _, tc := range []nobodyCase{
		{name: "cap_net_admin", ambient: []uintptr{unix.CAP_NET_ADMIN}},
		{name: "no-capabilities", mayRefuse: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testAsNobody(t, bin, tc) })
	}
}

// startAsNobody starts bin as user nobody with tc's capabilities; the
// channel yields its exit.
func startAsNobody(t *testing.T, bin string, port int, tc nobodyCase, log *syncBuffer) chan error {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-c", strconv.Itoa(port), "--log-format", "json"}, testDelays...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: 65534, Gid: 65534},
		AmbientCaps: tc.ambient,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start as nobody: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return exited
}

// readyOrExited waits until the server on port answers a ping (false) or
// exits (true, with how), for up to 10 s.
func readyOrExited(port int, exited chan error) (bool, error) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return true, err
		default:
		}
		if r := runNow("-c", strconv.Itoa(port), "--wait", "--timeout", "200ms"); r.code == 0 {
			return false, nil
		}
	}
	return true, errors.New("neither ready nor gone after 10s")
}

func testAsNobody(t *testing.T, bin string, tc nobodyCase) {
	port := testenv.FreePort(t)
	log := &syncBuffer{}
	exited := startAsNobody(t, bin, port, tc, log)
	if gone, err := readyOrExited(port, exited); gone {
		if !tc.mayRefuse || err == nil || !strings.Contains(log.String(), "cannot hold handshakes") || !strings.Contains(log.String(), "CAP_NET_ADMIN") {
			t.Fatalf("the server exited (%v) before it was ready; log:\n%s", err, log)
		}
		t.Logf("the server refused to start (%v), and said why:\n%s", err, log)
		return
	}
	line := startLine(t, log.String())
	why, _ := line["why"].(string)
	if line["strategy"] != "retransmit" || !strings.Contains(why, "CAP_NET_RAW") || !strings.Contains(why, "setcap cap_net_raw+ep") {
		t.Errorf("as nobody the server says strategy %v, why %q; want retransmit because of CAP_NET_RAW", line["strategy"], why)
	}
	// The binary's runtime: a P more than the test's, GOGC 400, unless the
	// environment (which the server inherits) says otherwise.
	if os.Getenv("GOMAXPROCS") == "" && line["gomaxprocs"] != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("the start-up line says gomaxprocs %v, want %d", line["gomaxprocs"], runtime.GOMAXPROCS(0))
	}
	if os.Getenv("GOGC") == "" && line["gogc"] != float64(400) {
		t.Errorf("the start-up line says gogc %v, want 400", line["gogc"])
	}
	addr4, _, sent, replied := askPair(t, port, 0x06)
	if b := connectNotEarly(t, "tcp4", addr4, sent, replied, 400*time.Millisecond, 2250*time.Millisecond); b != 0x04 {
		t.Errorf("read 0x%02x, want 0x04", b)
	}
	if r := runNow("-c", strconv.Itoa(port), "--stop"); r.code != 0 {
		t.Errorf("--stop: exit %d: %s", r.code, r.stderr)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("server exited with %v after --stop; log:\n%s", err, log)
		}
	case <-time.After(10 * time.Second):
		t.Error("server did not exit after --stop")
	}
}

// script runs one of the scripts from another directory, with the binary
// and its log kept out of the repository.
func script(t *testing.T, name string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(t), "scripts", "happyeyeballs", name)}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

func TestScripts(t *testing.T) {
	testenv.SkipIfShort(t, "the docs' scripts build the binary, start it and run a client: about 4 s")
	// The scripts build the binary with the go command, then start the
	// server with its defaults.
	goCmd := testenv.GoCommand(t)
	needHold(t, "auto")
	dir := t.TempDir()
	port := strconv.Itoa(testenv.FreePort(t))
	logFile := filepath.Join(dir, "server.log")
	env := []string{
		"HAPPYEYEBALLS_BIN=" + filepath.Join(dir, "bin", "happyeyeballs-server"),
		"HAPPYEYEBALLS_LOG=" + logFile,
		"PATH=" + filepath.Dir(goCmd) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	t.Cleanup(func() { runNow("-c", port, "--stop", "--timeout", "5s") })
	out, err := script(t, "setup.sh", env, port)
	if err != nil || !strings.Contains(out, "building") || !strings.Contains(out, "running on port "+port) {
		t.Fatalf("setup.sh: %v\n%s", err, out)
	}
	if r := runNow("-c", port, "--wait", "--timeout", "2s"); r.code != 0 {
		t.Fatalf("server not answering after setup.sh: %s", r.stderr)
	}
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "happy eyeballs server ready") {
		t.Errorf("log %s lacks the start-up line:\n%s", logFile, b)
	}
	out, err = script(t, "teardown.sh", env, port)
	if err != nil || strings.Contains(out, "building") || !strings.Contains(out, "stopped") {
		t.Fatalf("teardown.sh (the binary is up to date, so no build): %v\n%s", err, out)
	}
	p, _ := strconv.Atoi(port)
	if !refused(p) {
		t.Error("control port still open after teardown.sh")
	}
	if out, err = script(t, "teardown.sh", env, port); err != nil || !strings.Contains(out, "no happy eyeballs server running") {
		t.Errorf("teardown.sh with no server: %v\n%s", err, out)
	}
}
