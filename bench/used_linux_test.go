package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/listener/capture"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }

func rfc(t time.Time) string { return t.Format(time.RFC3339Nano) }

func TestParseServerLog(t *testing.T) {
	log := strings.Join([]string{
		`{"time":"` + rfc(at(0)) + `","level":"INFO","msg":"happy eyeballs server ready","control":["127.0.0.1:4000","[::1]:4000"]}`,
		`{"time":"` + rfc(at(1)) + `","level":"INFO","msg":"pair requested","ipv4_port":5000,"ipv6_port":5001}`,
		`{"time":"` + rfc(at(2)) + `","level":"INFO","msg":"released","family":"IPv4"}`,
		`{"time":"` + rfc(at(3)) + `","level":"INFO","msg":"connected","family":"IPv4","client":"127.0.0.1:6000",` +
			`"want":"` + rfc(at(400000)) + `","synack":"` + rfc(at(400030)) + `","synack_seen":true}`,
		`{"time":"` + rfc(at(4)) + `","level":"INFO","msg":"pair requested"}`,
		`{"time":"` + rfc(at(5)) + `","level":"INFO","msg":"connected","family":"IPv6","client":"[::ffff:127.0.0.1]:6001",` +
			`"want":"` + rfc(at(800000)) + `","synack":"","synack_seen":false}`,
		`{"time":"` + rfc(at(6)) + `","level":"INFO","msg":"released","family":"IPv6"}`,
		`{"time":"` + rfc(at(7)) + `","level":"WARN","msg":"family byte not sent","err":"broken pipe"}`,
		`panic: something`,
	}, "\n")
	lines, other, err := parseServerLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 8 || len(other) != 1 || other[0] != "panic: something" {
		t.Fatalf("%d lines, other %q; want 8 and the panic", len(lines), other)
	}
	if got := lines[0].Control; len(got) != 2 || got[0] != "127.0.0.1:4000" {
		t.Errorf("control %q", got)
	}
	views, problems := serverViews(lines)
	if len(problems) != 1 || problems[0] != "family byte not sent: broken pipe" {
		t.Errorf("problems %q", problems)
	}
	v4s, v6s := views[netip.MustParseAddrPort("127.0.0.1:6000")], views[netip.MustParseAddrPort("127.0.0.1:6001")] // unmapped
	if len(v4s) != 1 || len(v6s) != 1 {
		t.Fatalf("views %v: want both clients, once", views)
	}
	v4, v6 := v4s[0], v6s[0]
	if !v4.want.Equal(at(400000)) || !v4.synack.Equal(at(400030)) || !v4.synackSeen || !v4.releasedFirst {
		t.Errorf("IPv4 view %+v", *v4)
	}
	if !v6.want.Equal(at(800000)) || v6.synackSeen || !v6.synack.IsZero() || v6.releasedFirst {
		t.Errorf("IPv6 view %+v: want no SYN-ACK, connected logged before released", *v6)
	}
}

func TestServerLogRejectsABadTime(t *testing.T) {
	var s stamp
	if err := json.Unmarshal([]byte(`"yesterday"`), &s); err == nil {
		t.Error("a time that is not RFC 3339 was accepted")
	}
	if err := json.Unmarshal([]byte(`""`), &s); err != nil || !s.IsZero() {
		t.Errorf("empty time: %v, %v", s, err)
	}
}

func TestUsedRow(t *testing.T) {
	c4, c6 := netip.MustParseAddrPort("127.0.0.1:6000"), netip.MustParseAddrPort("[::1]:6001")
	c4b := netip.MustParseAddrPort("127.0.0.1:6002")
	pairs := []clientPair{
		{Mode: modeBoth, Slow: 6, Request: at(0), Replied: at(900), Port4: 1, Port6: 2, Winner: 4, Byte: 4, Local: c4.String(), Connected: at(400100)},
		{Mode: modeV6First, Slow: 4, Request: at(0), Replied: at(1500), Port4: 1, Port6: 2, Winner: 6, Byte: 6, Local: c6.String(), Connected: at(400200)},
		{Mode: modeBoth, Slow: 6, Request: at(0), Replied: at(700), Port4: 1, Port6: 2, Winner: 4, Byte: 4, Local: c4b.String(), Connected: at(399990)},
		{Mode: modeBoth, Slow: 4, Request: at(0), Replied: at(800), Err: "control: refused"},
	}
	// c4 comes round again: a later connection, answered 20 s later.
	obs := map[netip.AddrPort][]*observed{
		c4:  {{isn: 1, syn: at(1000), synack: at(400050)}, {isn: 2, syn: at(20e6), synack: at(20.4e6)}},
		c6:  {{syn: at(250000), synack: at(400150)}},
		c4b: {{syn: at(1000), synack: at(399950)}}, // 50 µs early
	}
	lines := []serverLine{
		{Msg: "pair requested"}, {Msg: "released", Family: "IPv4"},
		{Msg: "connected", Family: "IPv4", Client: c4.String(), Want: stamp{at(400000)}, SYNACK: stamp{at(400040)}, SYNACKSeen: true},
		{Msg: "pair requested"},
		{Msg: "connected", Family: "IPv6", Client: c6.String(), Want: stamp{at(400000)}},
		{Msg: "pair requested"}, {Msg: "released", Family: "IPv4"},
		{Msg: "connected", Family: "IPv4", Client: c4b.String(), Want: stamp{at(400000)}, SYNACK: stamp{at(399960)}, SYNACKSeen: true},
		{Msg: "connected", Family: "IPv4", Client: c4.String(), Want: stamp{at(20.4e6)}}, // c4's later pair
		{Level: "WARN", Msg: "something"},
	}
	own := map[netip.AddrPort]sniffed{c4: {isn: 1, synackSent: at(400036), synack: at(400050)},
		c4b: {isn: 9, synack: at(1)}} // another connection of c4b's address: left out
	in := usedInput{pairs: pairs, obs: obs, lines: lines, own: own, dropped: 1}
	r := usedRow(usedCase{name: "used/idle", label: "machine as it is"}, "", in)
	if r.Pairs != 4 || r.Replied != 3 || r.Winners != 3 || r.FastWon != 3 || r.ClientErrors != 1 || r.Unmatched != 0 {
		t.Errorf("counts %+v", r)
	}
	if r.Release.N != 3 || r.Release.MinUS != -50 || r.Release.MaxUS != 150 || r.Early != 1 {
		t.Errorf("release %+v, early %d: want -50, 50, 150 µs and one early", r.Release, r.Early)
	}
	if r.ServerReported != 2 || r.ServerGap.N != 2 || r.ServerGapMaxUS != 10 {
		t.Errorf("server reported %d, gap %+v max %v; want 2, 10 µs", r.ServerReported, r.ServerGap, r.ServerGapMaxUS)
	}
	if r.LogOrder != 1 || r.Problems != 1 || r.Dropped != 1 || r.Reply.N != 3 || r.Reply.MaxUS != 1500 {
		t.Errorf("log order %d, problems %d, dropped %d, reply %+v", r.LogOrder, r.Problems, r.Dropped, r.Reply)
	}
	if r.Own.N != 1 || r.Own.P50US != 0 || r.OwnSent.N != 1 || r.OwnSent.P50US != -14 || r.ClientSees.N != 3 || r.ClientSees.MaxUS != 50 {
		t.Errorf("own capture received %+v, sent %+v, client sees %+v", r.Own, r.OwnSent, r.ClientSees)
	}
	b := usedRow(usedCase{name: "used/idle", label: "machine as it is"}, modeV6First, in)
	if b.Name != "used/idle/v6first" || b.Pairs != 1 || b.Release.N != 1 || b.Release.P50US != 150 {
		t.Errorf("IPv6-first row %+v", b)
	}
	// A SYN at or after the instant is left out of the release error.
	obs[c6][0].syn = at(400000)
	if r := usedRow(usedCase{}, modeV6First, in); r.SYNAfter != 1 || r.Release.N != 0 {
		t.Errorf("SYN after the instant: %+v", r)
	}
}

func TestReadObserved(t *testing.T) {
	c := netip.MustParseAddrPort("127.0.0.1:40000")
	s := netip.MustParseAddrPort("127.0.0.1:50000")
	file := filepath.Join(t.TempDir(), "x.pcap")
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		src, dst netip.AddrPort
		seq, ack uint32
		flags    capture.Flags
		at       time.Time
	}{
		{c, s, 100, 0, capture.SYN, at(10)},
		{c, s, 100, 0, capture.SYN, at(20)},               // a retransmission
		{s, c, 7, 999, capture.SYN | capture.ACK, at(25)}, // answers another SYN
		{s, c, 7, 101, capture.SYN | capture.ACK, at(30)},
		{s, c, 7, 101, capture.SYN | capture.ACK, at(40)}, // a second SYN-ACK
		{c, s, 500, 0, capture.SYN, at(9e6)},              // the port comes round again
		{s, c, 8, 501, capture.SYN | capture.ACK, at(9.1e6)},
	} {
		if err := w.WritePacket(p.at, tcp4(p.src, p.dst, p.seq, p.ack, p.flags)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readObserved(file)
	if err != nil {
		t.Fatal(err)
	}
	cs := got[c]
	if len(got) != 1 || len(cs) != 2 {
		t.Fatalf("observed %v, want two connections of one client", got)
	}
	if o := cs[0]; o.syns != 2 || !o.syn.Equal(at(10)) || !o.last.Equal(at(20)) || !o.synack.Equal(at(30)) {
		t.Errorf("first connection %+v, want SYN at 10 µs (2 of them), SYN-ACK at 30 µs", o)
	}
	if o := cs[1]; o.syns != 1 || o.isn != 500 || !o.synack.Equal(at(9.1e6)) {
		t.Errorf("second connection %+v", o)
	}
	if nearest(cs, at(100)) != cs[0] || nearest(cs, at(8e6)) != cs[1] || nearest(nil, at(0)) != nil {
		t.Error("nearest picked the wrong connection")
	}
}

// tcp4 is a minimal IPv4 packet carrying a TCP header.
func tcp4(src, dst netip.AddrPort, seq, ack uint32, flags capture.Flags) []byte {
	b := make([]byte, 40)
	b[0], b[9] = 0x45, 6
	b[2], b[3] = 0, 40
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	t := b[20:]
	t[0], t[1] = byte(src.Port()>>8), byte(src.Port())
	t[2], t[3] = byte(dst.Port()>>8), byte(dst.Port())
	for i, v := range []uint32{seq, ack} {
		t[4+4*i], t[5+4*i], t[6+4*i], t[7+4*i] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	t[12], t[13] = 5<<4, byte(flags)
	return b
}

func TestTCPDumpFilterNamesThePortRange(t *testing.T) {
	f, err := tcpdumpFilter()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f, "tcp portrange ") || !strings.Contains(f, "ip6[53] & 2 != 0") {
		t.Errorf("filter %q", f)
	}
}

func TestParseClient(t *testing.T) {
	o, err := parseClient([]string{"-control", "127.0.0.1:1", "-pairs", "3", "-modes", "v6first"})
	if err != nil || o.pairs != 3 || len(o.modes) != 1 || o.modes[0] != modeV6First {
		t.Errorf("parseClient: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{}, {"-control", "x", "-pairs", "0"}, {"-control", "x", "-modes", "ipv9"},
		{"-control", "x", "-gap-min", "2s", "-gap-max", "1s"}, {"-control", "x", "extra"}} {
		if _, err := parseClient(bad); err == nil {
			t.Errorf("parseClient(%q) accepted", bad)
		}
	}
}

// TestClientAgainstTheBroker runs the client process's code against an
// in-process server: both dial modes, both slow families; the fast family
// must win every pair with its byte, and each pair be reported as JSON.
func TestClientAgainstTheBroker(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	he, err := happyeyeballs.NewServer(happyeyeballs.Config{FastDelay: 400 * time.Millisecond, SlowDelay: 800 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- he.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := he.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-served
	})
	var out, errb bytes.Buffer
	if code := runClient([]string{"-control", ln.Addr().String(), "-pairs", "4", "-gap-min", "0", "-gap-max", "10ms"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	dec := json.NewDecoder(&out)
	seen := map[string]int{}
	for i := 0; ; i++ {
		var p clientPair
		if err := dec.Decode(&p); err != nil {
			if i != 4 {
				t.Fatalf("pair %d: %v", i, err)
			}
			break
		}
		seen[p.Mode]++
		fast := 10 - p.Slow
		if p.Err != "" || p.Winner != fast || p.Byte != fast || p.Local == "" || p.Connected.Before(p.Replied) || p.Replied.Before(p.Request) {
			t.Errorf("pair %d: %+v; want the fast family IPv%d with its byte", i, p, fast)
		}
		if p.Mode == modeV6First && (len(p.Attempts) != 2 || p.Attempts[0].Family != 6 ||
			p.Attempts[1].Start.Sub(p.Attempts[0].Start) < clientStagger) {
			t.Errorf("pair %d, IPv6 first: attempts %+v; want IPv6, then IPv4 %v later", i, p.Attempts, clientStagger)
		}
	}
	if seen[modeBoth] != 2 || seen[modeV6First] != 2 {
		t.Errorf("modes %v, want two of each", seen)
	}
}

// TestMain makes the test binary the client processes and the do-nothing
// server too, as the benchmark's binary is: the rows start it again with
// clientCommand, poolCommand or noopCommand.
func TestMain(m *testing.M) {
	if code, ok := runSubcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
