package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
)

// seenSYNACK is a SYN-ACK as tcpdump saw it on lo.
type seenSYNACK struct {
	at       time.Time // tcpdump's (the kernel's) time of the received copy
	src, dst netip.AddrPort
}

// tcpdump is TestAsUsed's outside observer: a tcpdump process, no code of
// this repository's, printing the SYN-ACKs it sees on lo with the kernel's
// nanosecond timestamps.
type tcpdump struct {
	cmd    *exec.Cmd
	stderr logtest.Buffer
	exited chan error // tcpdump's exit, once its output is read

	mu      sync.Mutex
	synacks []seenSYNACK
	bad     []string // lines of stdout that are not a SYN-ACK
}

// synackLine is a SYN-ACK as tcpdump -nn -tt --time-stamp-precision=nano
// prints it: "1796617014.290177469 IP6 ::1.56075 > ::1.46436: Flags [S.], ...".
var synackLine = regexp.MustCompile(`^(\d+)\.(\d{9}) IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[S\.\],`)

// needTCPDump returns the path of tcpdump; without it the test skips as a
// missing feature (.ci/run installs it).
func needTCPDump(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		testenv.SkipWithoutFeature(t, "tcpdump, the as-used test's outside observer of the SYN-ACKs (apt-get install tcpdump)", err)
	}
	return path
}

// startTCPDump starts tcpdump (at path) on lo keeping the SYN-ACKs sent from a port
// of the ephemeral range but notPort (the server's control port), and
// returns once tcpdump says it is listening. The pairs' ports are chosen by
// the server when a test asks for a pair, in the ephemeral range, so the
// capture cannot name them in advance: TestAsUsed picks the pairs' SYN-ACKs
// by port afterwards. tcpdump is stopped (killed) when the test ends.
//
// The flags, and why:
//   - -nn -tt --time-stamp-precision=nano: addresses and ports as numbers,
//     the time as Unix seconds with nine digits, the kernel's nanoseconds;
//   - --immediate-mode -l: each packet handed to tcpdump and printed as it
//     comes, not when a ring block fills, so that the test can wait for the
//     last one (a SYN-ACK of its own, see stop) rather than for time;
//   - -s 160: the headers alone (link 14, IPv6 40, TCP with options 60
//     bytes). In immediate mode libpcap's ring has a slot of the snapshot
//     length per packet: with the default 256 KiB, even -B 16 MiB would
//     hold 64 packets, and another package's test may open thousands of
//     connections on lo meanwhile;
//   - -B 16384: 16 MiB for that ring, so that such a burst drops nothing
//     (the test fails on a drop: an incomplete capture cannot show that no
//     SYN-ACK left early);
//   - no -j: lo offers one time stamp type, host (tcpdump -J -i lo).
//
// On lo, libpcap leaves out the outgoing copy of each packet and keeps the
// received one: the copy whose time the server logs as "synack" (its own
// capture's stamp; the copy sent is its "synack_sent").
//
// libpcap cannot index the TCP header of an IPv6 packet (tcp[13]), so for
// IPv6 the filter reads the flags directly behind a 40-byte header with no
// extension, as the kernel sends on loopback.
func startTCPDump(t *testing.T, path string, notPort int) *tcpdump {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		testenv.SkipWithoutFeature(t, "/proc/sys/net/ipv4/ip_local_port_range (where the server's pair ports lie)", err)
	}
	lohi := strings.Fields(string(b))
	if len(lohi) != 2 {
		t.Fatalf("ip_local_port_range %q: want two ports", b)
	}
	filter := fmt.Sprintf("tcp src portrange %s-%s and not src port %d and "+
		"((ip and tcp[13] & 0x12 == 0x12) or (ip6 and ip6[6] == 6 and ip6[53] & 0x12 == 0x12))", lohi[0], lohi[1], notPort)
	td := &tcpdump{exited: make(chan error, 1)}
	td.cmd = exec.Command(path, "-i", "lo", "-nn", "-tt", "--time-stamp-precision=nano", "--immediate-mode", "-l",
		"-s", "160", "-B", "16384", filter)
	stdout, err := td.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := td.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := td.cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	listening := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() { td.readStdout(stdout) })
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			td.stderr.Write(append(sc.Bytes(), '\n'))
			if strings.HasPrefix(sc.Text(), "listening on lo") {
				close(listening)
			}
		}
	})
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		td.exited <- td.cmd.Wait()
	}()
	t.Cleanup(func() {
		td.cmd.Process.Kill()
		err := <-td.exited
		td.exited <- err
	})
	select {
	case <-listening:
		return td
	case err := <-td.exited:
		td.exited <- err
		if out := td.stderr.String(); strings.Contains(out, "Operation not permitted") || strings.Contains(out, "ermission denied") {
			testenv.SkipWithoutPrivilege(t, &os.PathError{Op: "tcpdump -i lo", Path: path, Err: os.ErrPermission}, "CAP_NET_RAW (for tcpdump)")
		}
		t.Fatalf("tcpdump exited (%v) before it listened:\n%s", err, td.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump not listening after 10 s:\n%s", td.stderr.String())
	}
	return nil
}

// readStdout parses tcpdump's lines as they come.
func (td *tcpdump) readStdout(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == "" {
			continue // tcpdump ends its output with an empty line when interrupted
		}
		s, err := parseSYNACK(sc.Text())
		td.mu.Lock()
		if err != nil {
			td.bad = append(td.bad, sc.Text())
		} else {
			td.synacks = append(td.synacks, s)
		}
		td.mu.Unlock()
	}
}

// parseSYNACK parses a line of tcpdump's.
func parseSYNACK(line string) (seenSYNACK, error) {
	m := synackLine.FindStringSubmatch(line)
	if m == nil {
		return seenSYNACK{}, errors.New("not a SYN-ACK")
	}
	sec, err1 := strconv.ParseInt(m[1], 10, 64)
	nsec, err2 := strconv.ParseInt(m[2], 10, 64)
	src, err3 := addrPort(m[3], m[4])
	dst, err4 := addrPort(m[5], m[6])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return seenSYNACK{}, err
	}
	return seenSYNACK{at: time.Unix(sec, nsec), src: src, dst: dst}, nil
}

func addrPort(addr, port string) (netip.AddrPort, error) {
	return netip.ParseAddrPort(net.JoinHostPort(addr, port))
}

// stop connects to a listener of its own in the captured range and waits
// until tcpdump prints that connection's SYN-ACK: tcpdump prints the
// packets in the order the kernel queued them, so every SYN-ACK sent before
// has been printed. It then stops tcpdump (SIGINT: it prints its counts)
// and returns the SYN-ACKs seen and how many packets the kernel dropped.
func (td *tcpdump) stop(t *testing.T) ([]seenSYNACK, int) {
	t.Helper()
	ours := testenv.Serve(t, "tcp4", "127.0.0.1:0", func(c net.Conn) { c.Close() })
	c, err := net.Dial("tcp4", ours.String())
	if err != nil {
		t.Fatal(err)
	}
	last := seenSYNACK{src: ours, dst: c.LocalAddr().(*net.TCPAddr).AddrPort()}
	c.Close()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("tcpdump to print the SYN-ACK %v → %v", last.src, last.dst), func() bool {
		td.mu.Lock()
		defer td.mu.Unlock()
		return slices.ContainsFunc(td.synacks, func(s seenSYNACK) bool { return s.src == last.src && s.dst == last.dst })
	})
	if err := td.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-td.exited:
		td.exited <- err
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, td.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump did not exit on SIGINT:\n%s", td.stderr.String())
	}
	m := regexp.MustCompile(`(?m)^(\d+) packets? dropped by kernel`).FindStringSubmatch(td.stderr.String())
	if m == nil {
		t.Fatalf("tcpdump gave no count of drops:\n%s", td.stderr.String())
	}
	dropped, _ := strconv.Atoi(m[1])
	td.mu.Lock()
	defer td.mu.Unlock()
	if len(td.bad) > 0 {
		t.Errorf("tcpdump printed %d lines that are not a SYN-ACK, the first %q", len(td.bad), td.bad[0])
	}
	return slices.Clone(td.synacks), dropped
}

func TestParseSYNACK(t *testing.T) {
	for _, tc := range []struct {
		line string
		want seenSYNACK // zero: not a SYN-ACK
	}{
		{"1796617014.289700562 IP 127.0.0.1.55813 > 127.0.0.1.40248: Flags [S.], seq 2332290230, ack 1741771233, win 65483, length 0",
			seenSYNACK{time.Unix(1796617014, 289700562), netip.MustParseAddrPort("127.0.0.1:55813"), netip.MustParseAddrPort("127.0.0.1:40248")}},
		{"1796617014.290177469 IP6 ::1.56075 > ::1.46436: Flags [S.], seq 346858888, ack 2527531795, win 65464, length 0",
			seenSYNACK{time.Unix(1796617014, 290177469), netip.MustParseAddrPort("[::1]:56075"), netip.MustParseAddrPort("[::1]:46436")}},
		{"1796617014.290177469 IP 127.0.0.1.40248 > 127.0.0.1.55813: Flags [S], seq 1741771232, win 65495, length 0", seenSYNACK{}},
		{"1796617014.290177 IP 127.0.0.1.55813 > 127.0.0.1.40248: Flags [S.], seq 1, ack 2", seenSYNACK{}}, // microseconds: not what was asked for
		{"listening on lo, link-type EN10MB (Ethernet), snapshot length 160 bytes", seenSYNACK{}},
	} {
		got, err := parseSYNACK(tc.line)
		if got != tc.want || (err == nil) != (tc.want != seenSYNACK{}) {
			t.Errorf("parseSYNACK(%q) = %v, %v; want %v", tc.line, got, err, tc.want)
		}
	}
}
