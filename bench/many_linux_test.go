package main

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener/capture"
	"golang.org/x/sys/unix"
)

func TestParseSchedstat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"123456789 5000 42\n", 123456789, true},
		{"0 0 0", 0, true},
		{"", 0, false},
		{"abc 1 2", 0, false},
		{"-5 1 2", 0, false},
	} {
		got, err := parseSchedstat([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSchedstat(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 are utime and stime, in ticks of 1/userHZ s.
	line := func(comm string, utime, stime string) string {
		return "4242 (" + comm + ") S 1 4242 4242 0 -1 4194560 100 0 0 0 " + utime + " " + stime + " 0 0 20 0 3 0 12345 1000 100\n"
	}
	for _, tc := range []struct {
		name, in string
		want     time.Duration
		ok       bool
	}{
		{"plain", line("synhold-clock", "7", "3"), 100 * time.Millisecond, true},
		{"name with spaces and parentheses", line("a) b (c", "150", "50"), 2 * time.Second, true},
		{"no parentheses", "4242 S 1 2 3", 0, false},
		{"too short", "4242 (x) S 1 2 3", 0, false},
		{"not a number", line("x", "7", "z"), 0, false},
	} {
		got, err := parseStatCPU([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: parseStatCPU = %v, %v; want %v, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1"))
	f.Add([]byte("1 (a) b) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && d < 0 {
			t.Errorf("parseStatCPU(%q) = %v: negative", b, d)
		}
		if d, err := parseSchedstat(b); err == nil && d < 0 {
			t.Errorf("parseSchedstat(%q) = %v: negative", b, d)
		}
	})
}

func TestCPUUse(t *testing.T) {
	before := cpuSample{byTID: map[int]time.Duration{1: time.Millisecond, 2: 5 * time.Millisecond}, fine: true}
	after := cpuSample{byTID: map[int]time.Duration{1: 3 * time.Millisecond, 3: time.Millisecond}, fine: true}
	// Thread 1 used 2 ms, thread 3 started in between and used 1 ms;
	// thread 2 ended and is lost.
	u := cpuUse(before, after, 10)
	if u.CPUUS != 3000 || u.PerReleaseUS != 300 || u.Releases != 10 || u.Thread != clockThreadName {
		t.Errorf("cpuUse = %+v, want 3 ms, 300 µs per release of 10, thread %s", u, clockThreadName)
	}
	after.whole, after.fine = true, false
	u = cpuUse(before, after, 0)
	if !strings.HasPrefix(u.Thread, "whole process") || !strings.Contains(u.Thread, "ticks") || u.PerReleaseUS != 0 {
		t.Errorf("cpuUse of the whole process in ticks, no release = %+v", u)
	}
}

// TestSampleClockCPUFindsTheNamedThread names a locked thread as the
// listener names its clock's, burns CPU on it, and expects the sample to
// hold that thread alone, grown by at least part of what it burned.
func TestSampleClockCPUFindsTheNamedThread(t *testing.T) {
	named, burned := make(chan int), make(chan struct{})
	done, sampled := make(chan struct{}), make(chan struct{})
	defer close(sampled)
	go func() {
		runtime.LockOSThread() // never unlocked: the renamed thread ends with the goroutine
		old, err := os.ReadFile("/proc/thread-self/comm")
		if err == nil {
			err = setThreadName(clockThreadName)
		}
		if err != nil {
			close(named)
			return
		}
		named <- unix.Gettid()
		<-burned
		for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
		}
		done <- struct{}{}
		<-sampled // the thread ends with the goroutine: not before the sample
		// The main thread is kept when a locked goroutine ends on it:
		// give it its name back.
		setThreadName(strings.TrimSpace(string(old)))
	}()
	tid, ok := <-named
	if !ok {
		t.Fatal("prctl(PR_SET_NAME) failed")
	}
	before, err := sampleClockCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	close(burned)
	<-done
	after, err := sampleClockCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.byTID[tid]; !ok || after.whole {
		t.Fatalf("sample %+v: want the named thread %d, not the whole process", after, tid)
	}
	// On a loaded machine the thread gets only part of the 30 ms.
	if d := after.byTID[tid] - before.byTID[tid]; d <= 0 || d > time.Second {
		t.Errorf("the named thread used %v while it spun 30 ms", d)
	}
}

// setThreadName names the calling thread (prctl PR_SET_NAME), as the
// listener names its clock's.
func setThreadName(name string) error {
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	err = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
	runtime.KeepAlive(b)
	return err
}

func TestSampleClockCPUFallsBackToTheWholeProcess(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		testenv.SkipWithoutFeature(t, "sleep(1)", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	s, err := sampleClockCPU(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !s.whole || len(s.byTID) != 1 {
		t.Errorf("sample of sleep(1) %+v: want its one thread, as the whole process", s)
	}
	if _, err := sampleClockCPU(-1); err == nil {
		t.Error("a sample of no process did not fail")
	}
}

func TestLastSYNACK(t *testing.T) {
	s := netip.MustParseAddrPort("127.0.0.1:50000")
	c1, c2 := netip.MustParseAddrPort("127.0.0.1:40001"), netip.MustParseAddrPort("127.0.0.1:40002")
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		dst   netip.AddrPort
		flags capture.Flags
		at    time.Time
	}{
		{c1, capture.SYN | capture.ACK, at(10)},
		{c2, capture.SYN | capture.ACK, at(30)},
		{c1, capture.SYN | capture.ACK, at(90)}, // sent again: counts once, at its first
		{c2, capture.ACK, at(95)},               // not a SYN-ACK
	} {
		if err := w.WritePacket(p.at, tcp4(s, p.dst, 7, 101, p.flags)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	last, n, err := lastSYNACK(file)
	if err != nil || n != 2 || !last.Equal(at(30)) {
		t.Errorf("lastSYNACK = %v, %d, %v; want 30 µs, 2 clients", last, n, err)
	}
}

func TestDialPool(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go drainUpstream(ln)
	r := dialPool(ln.Addr().String(), 20, 5*time.Second)
	if r.Dialled != 20 || r.Connected != 20 || len(r.Errors) != 0 {
		t.Errorf("dialPool to a listener = %+v, want 20 of 20", r)
	}
	addr := ln.Addr().String()
	ln.Close()
	r = dialPool(addr, 8, time.Second)
	if r.Connected != 0 || len(r.Errors) != 5 {
		t.Errorf("dialPool to a closed port = %+v, want none connected, 5 errors kept", r)
	}
}

func TestPoolClientRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-addr", "127.0.0.1:1", "-n", "0"}, {"-addr", "x", "extra"}} {
		var out, errb bytes.Buffer
		if code := runPoolClient(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("runPoolClient(%q) = %d, stderr %q: want 2 and a message", args, code, errb.String())
		}
	}
}

func TestNoopServerAnswersAndStops(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := startNoopServer(self)
	if err != nil {
		t.Fatal(err)
	}
	p4, p6, err := request(p.address(), 4)
	if err != nil || p4 != 0x2710 || p6 != 0x2711 {
		t.Errorf("request = %d, %d, %v; want the fixed ports", p4, p6, err)
	}
	if err := p.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if (*noopProcess)(nil).address() != "" {
		t.Error("no server has an address")
	}
}

// TestFloorRows replays 10 held SYNs by hand, as the floor does, and
// expects tcpdump to see every SYN-ACK after the first replay.
func TestFloorRows(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		testenv.SkipWithoutFeature(t, "tcpdump, the floor's observer", err)
	}
	sn, err := openSniffer()
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	defer sn.close()
	rows, err := floorRows(sn, []int{10}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].N != 10 || rows[0].Span.N != 1 {
		t.Fatalf("rows %+v: want one row of 10, one round", rows)
	}
	// Loose: a loaded machine is slow, but not a second for 10 replays.
	if r := rows[0]; r.SpanUS <= 0 || r.SpanUS > 1e6 || r.PerHandshakeUS != stats.Round3(r.SpanUS/10) {
		t.Errorf("floor %+v: want a positive span under 1 s, a tenth of it per handshake", r)
	}
}

func TestServerClockCPUAndReleased(t *testing.T) {
	log := `{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"released","family":"ipv4"}
{"time":"2026-01-01T00:00:01Z","level":"INFO","msg":"released","family":"ipv6"}
{"time":"2026-01-01T00:00:02Z","level":"INFO","msg":"release clock","releases":7,"wakeups":3,"cpu_per_release_us":41.25}
`
	lines, other, err := parseServerLog(strings.NewReader(log))
	if err != nil || len(other) != 0 {
		t.Fatal(err, other)
	}
	var u CPUUse
	serverClockCPU(&u, lines)
	if u.ServerPerReleaseUS != 41.25 || u.ServerReleases != 7 {
		t.Errorf("server's own figure %+v, want 41.25 µs over 7", u)
	}
	if n := released(lines); n != 2 {
		t.Errorf("released = %d, want 2", n)
	}
	u = CPUUse{}
	serverClockCPU(&u, lines[:2])
	if u.ServerReleases != 0 {
		t.Errorf("a log without the line gave %+v", u)
	}
}
