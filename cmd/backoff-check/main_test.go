package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/synhold/synhold/backoff"
	"github.com/synhold/synhold/listener/capture"
)

var (
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	server = netip.MustParseAddrPort("127.0.0.1:8081")
	// specGaps are the gaps of a conformant client, in ms.
	specGaps = []int{1000, 1720, 2300, 4400, 6100}
)

// segment builds an IP packet carrying a TCP segment with flags.
func segment(t testing.TB, src, dst netip.AddrPort, seq, ack uint32, flags capture.Flags) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack,
		SYN: flags.Has(capture.SYN), ACK: flags.Has(capture.ACK), RST: flags.Has(capture.RST), Window: 65535}
	var ip gopacket.NetworkLayer
	if src.Addr().Is4() {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
	} else {
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip.(gopacket.SerializableLayer), tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// packet is one packet of a pcap file under construction.
type packet struct {
	at time.Time
	ip []byte
}

// pcapFile writes packets to a pcap file with capture.NewWriter and returns
// its bytes.
func pcapFile(t testing.TB, pkts []packet) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := capture.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.at, p.ip); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// clientCapture is a capture of a conformant client on loopback, with what
// else a server sees: SYN-ACKs, a retransmitted SYN, a packet seen twice, a
// SYN from another host and one to another port.
func clientCapture(t testing.TB) []byte {
	var pkts []packet
	at := t0
	for i, g := range append([]int{0}, specGaps...) {
		at = at.Add(time.Duration(g) * time.Millisecond)
		src := netip.AddrPortFrom(server.Addr(), uint16(40000+i))
		isn := uint32(1000 * (i + 1))
		syn := segment(t, src, server, isn, 0, capture.SYN)
		pkts = append(pkts,
			packet{at, syn},
			packet{at.Add(50 * time.Microsecond), segment(t, server, src, 77, isn+1, capture.SYN|capture.ACK)})
		switch i {
		case 1:
			pkts = append(pkts, packet{at.Add(20 * time.Microsecond), syn}) // seen twice
		case 3:
			pkts = append(pkts, packet{at.Add(time.Second), syn}) // retransmitted
		}
	}
	pkts = append(pkts,
		packet{t0.Add(1500 * time.Millisecond), segment(t, netip.MustParseAddrPort("192.0.2.7:5555"), server, 9, 0, capture.SYN)},
		packet{t0.Add(1600 * time.Millisecond), segment(t, netip.AddrPortFrom(server.Addr(), 5), netip.AddrPortFrom(server.Addr(), 9999), 9, 0, capture.SYN)},
	)
	return pcapFile(t, pkts)
}

// runCheck runs the command and returns its exit code and output.
func runCheck(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// writeFile writes b to a file in a temporary directory.
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPcap(t *testing.T) {
	file := writeFile(t, "client.pcap", clientCapture(t))
	code, out, errs := runCheck(t, "", "--pcap", file, "--port", "8081", "--client", "127.0.0.1")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}
	for _, s := range []string{
		"backoff: PASSED: 1 series, 6 attempts kept, 2 removed",
		"retransmission: same source and ISN 4000",
		"foreign source: source 192.0.2.7:5555",
		"duplicate copies dropped (a capture on \"any\" sees loopback packets twice): 1",
		"ReconnectInfo: passed=true backoff_ms=[1000 1720 2300 4400 6100]",
		"reference server's ReconnectInfo on the same attempts: passed=true backoff_ms=[1000 1720 2300 4400 6100]",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	t.Logf("\n%s", out)

	// Every source counts without --client: the other host's SYN breaks a gap.
	if code, out, _ := runCheck(t, "", "--pcap", file, "--port", "8081"); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("without --client: exit %d, want 1 and FAILED\n%s", code, out)
	}

	code, out, _ = runCheck(t, "", "--pcap", file, "--port", "8081", "--client", "127.0.0.1", "--json")
	var r struct {
		Passed     bool            `json:"passed"`
		BackoffMs  []int32         `json:"backoff_ms"`
		Duplicates int             `json:"duplicates"`
		Analysis   json.RawMessage `json:"analysis"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out)
	}
	if code != 0 || !r.Passed || len(r.BackoffMs) != 5 || r.Duplicates != 1 || !bytes.Contains(r.Analysis, []byte(`"reason": "foreign source"`)) {
		t.Fatalf("JSON: exit %d, passed %t, backoff_ms %v, duplicates %d, analysis:\n%s", code, r.Passed, r.BackoffMs, r.Duplicates, r.Analysis)
	}
}

func TestTimes(t *testing.T) {
	// A client trying ::1 and 127.0.0.1 on every retry, each with the
	// spec's backoff: passes per address, though the reference server,
	// merging them, would fail it.
	var b strings.Builder
	b.WriteString("# seconds, destination\n\n")
	at := t0
	for i, g := range append([]int{0}, specGaps...) {
		at = at.Add(time.Duration(g) * time.Millisecond)
		if i%2 == 0 {
			b.WriteString(at.Format(time.RFC3339Nano) + " [::1]:8081\n")
		} else {
			b.WriteString(strings.TrimRight(strings.TrimRight(formatSeconds(at), "0"), ".") + ",[::1]:8081\n")
		}
		b.WriteString(formatSeconds(at.Add(2*time.Millisecond)) + "\t127.0.0.1:8081\n")
	}
	code, out, errs := runCheck(t, b.String(), "--max_backoff", "120s")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s\ninput:\n%s", code, out, errs, b.String())
	}
	for _, s := range []string{"2 series", "reference server's verdict on the same attempts (as one list, the way it judges them): failed", "InterleavedAddresses",
		"ReconnectInfo: passed=true backoff_ms=[1000 1720 2300 4400 6100]",
		"reference server's ReconnectInfo on the same attempts: passed=false backoff_ms=[2 998 2 1718 2 "} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}

	// Doubling gaps fail; from a file this time.
	file := writeFile(t, "times.txt", []byte("0\n1\n3\n7\n15\n"))
	if code, out, _ := runCheck(t, "", "--times", file, "--max_backoff", "10s"); code != 1 || !strings.Contains(out, "late") {
		t.Fatalf("doubling gaps: exit %d, want 1 with a late gap\n%s", code, out)
	}
}

// TestTooFewAttempts checks that a client that stopped after its first
// retry fails, with the reason, while the reference server's verdict (which
// passes it) is given beside ours in text and JSON.
func TestTooFewAttempts(t *testing.T) {
	for _, tc := range []struct {
		name, times string
		attempts    int
	}{
		{"one attempt", "100\n", 1},
		{"one retry", "100\n101.0005\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := runCheck(t, tc.times)
			want := fmt.Sprintf("the client made %d attempt", tc.attempts)
			if code != 1 || !strings.Contains(out, "why: TooFewAttempts: "+want) ||
				!strings.Contains(out, "ReconnectInfo: passed=false") ||
				!strings.Contains(out, "reference server's ReconnectInfo on the same attempts: passed=true") {
				t.Fatalf("exit %d, want 1 with TooFewAttempts and the reference passing\n%s", code, out)
			}
			code, out, _ = runCheck(t, tc.times, "--json")
			var r struct {
				Passed          bool `json:"passed"`
				ReferencePassed bool `json:"reference_passed"`
				Reason          struct {
					Kind   string `json:"kind"`
					Detail string `json:"detail"`
				} `json:"reason"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if code != 1 || r.Passed || !r.ReferencePassed || r.Reason.Kind != "TooFewAttempts" ||
				!strings.HasPrefix(r.Reason.Detail, want) || !strings.Contains(r.Reason.Detail, "it stopped retrying or never started") {
				t.Errorf("JSON: exit %d, %+v", code, r)
			}
		})
	}
}

func TestSVG(t *testing.T) {
	file := writeFile(t, "client.pcap", clientCapture(t))
	svg := filepath.Join(t.TempDir(), "run.svg")
	code, out, errs := runCheck(t, "", "--pcap", file, "--port", "8081", "--client", "127.0.0.1", "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed, and one mark per attempt: 6 kept, 2 removed.
	d := xml.NewDecoder(bytes.NewReader(b))
	marks := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if e, ok := tok.(xml.StartElement); ok {
			for _, a := range e.Attr {
				if a.Name.Local == "class" {
					marks[strings.Fields(a.Value)[0]]++
				}
			}
		}
	}
	if marks["attempt"] != 6 || marks["removed"] != 2 {
		t.Errorf("marks %v, want 6 attempts and 2 removed", marks)
	}
	if code, _, errs := runCheck(t, "", "--pcap", file, "--port", "8081", "--svg", filepath.Join(t.TempDir(), "no", "such", "dir.svg")); code != 2 || !strings.Contains(errs, "dir.svg") {
		t.Errorf("unwritable --svg: exit %d, stderr %q; want 2 naming the file", code, errs)
	}
}

// formatSeconds prints t as Unix seconds with nine decimals.
func formatSeconds(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"bad time", "1.0\nyesterday\n", nil, "line 2"},
		{"three columns", "1 ::1 x\n", nil, "line 1"},
		{"bad destination", "1 localhost:80\n", nil, "destination"},
		{"no attempts", "# nothing\n", nil, "no attempts"},
		{"huge seconds", "1e300\n", nil, "out of range"},
		{"pcap without port", "", []string{"--pcap", "x"}, "--port"},
		{"client without pcap", "", []string{"--client", "::1"}, "--client applies to --pcap only"},
		{"both inputs", "", []string{"--pcap", "x", "--port", "1", "--times", "y"}, "not both"},
		{"missing file", "", []string{"--times", "/nonexistent/times"}, "no such file"},
		{"not a pcap", "", []string{"--pcap", "/dev/null", "--port", "1"}, "read pcap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCheck(t, tc.stdin, tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q: want 2 and %q\n%s", code, errs, tc.want, out)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"1740830400.123456789", time.Unix(1740830400, 123456789)},
		{"1740830400.1234567891", time.Unix(1740830400, 123456789)},
		{"12.5", time.Unix(12, 500000000)},
		{".25", time.Unix(0, 250000000)},
		{"7.", time.Unix(7, 0)},
		{"-1.5", time.Unix(-1, -500000000)},
		{"1e3", time.Unix(1000, 0)},
		{"2025-03-01T12:00:00.000000001Z", t0.Add(1)},
		{"2025-03-01T13:00:00+01:00", t0},
	} {
		got, err := parseTime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", ".", "-", "1.2.3", "NaN", "Inf", "1e13", "9999999999999", "2025-03-01"} {
		if got, err := parseTime(in); err == nil {
			t.Errorf("parseTime(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseTimes checks that any input either fails with an error or gives
// one attempt per line that holds one, each of which Analyze and the report
// can take.
func FuzzParseTimes(f *testing.F) {
	for _, s := range []string{
		"0\n1\n2.6\n", "# c\n\n1740830400.5 ::1\n1740830401.5,127.0.0.1:8081\n",
		"2025-03-01T12:00:00Z [::1]:1\n", "-0.000000001\n1e9\n", "1 2 3\n", ".\n", "99999999999.999999999\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		attempts, err := parseTimes(strings.NewReader(s))
		if err != nil {
			return
		}
		lines := 0
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines++
			}
		}
		if len(attempts) != lines {
			t.Fatalf("%d attempts from %d lines", len(attempts), lines)
		}
		checkAnalysis(t, attempts)
	})
}

// FuzzPcapAttempts feeds pcapAttempts arbitrary bytes after a valid file's
// start: it must not panic, and every attempt it returns is a SYN to the port.
func FuzzPcapAttempts(f *testing.F) {
	file := clientCapture(f)
	f.Add(file)
	f.Add(file[:len(file)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		attempts, _, span, err := pcapAttempts(bytes.NewReader(b), 8081)
		if err != nil {
			return
		}
		if span < 0 {
			t.Fatalf("capture span %v", span)
		}
		for _, a := range attempts {
			if a.Dst.Port() != 8081 || !a.HasISN {
				t.Fatalf("attempt %+v is not a SYN to 8081", a)
			}
		}
		checkAnalysis(t, attempts)
	})
}

// checkAnalysis runs attempts through Analyze, the verdict and both reports.
func checkAnalysis(t *testing.T, attempts []backoff.Attempt) {
	t.Helper()
	a := backoff.Analyze(attempts, backoff.Default(), backoff.Options{})
	r := report{Analysis: a}
	if err := write(&bytes.Buffer{}, r, false); err != nil {
		t.Fatal(err)
	}
	if err := write(&bytes.Buffer{}, r, true); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteSVG(&bytes.Buffer{}, "fuzz"); err != nil {
		t.Fatal(err)
	}
}
