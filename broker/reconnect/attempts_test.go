package reconnect

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/backoff"
)

var (
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	retry4 = netip.MustParseAddrPort("127.0.0.1:8081")
	retry6 = netip.MustParseAddrPort("[::1]:8081")
)

// srcAddr is a loopback client port.
func srcAddr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// specGaps are gaps a conformant client leaves, in ms.
var specGaps = []int{1000, 1720, 2300, 4400, 6100}

func TestTestMatchesSYNsAndAccepts(t *testing.T) {
	tt := newSession(srcAddr(5000), 0, SYN)
	at := t0
	for i, g := range append([]int{0}, specGaps...) {
		at = at.Add(time.Duration(g) * time.Millisecond)
		src := srcAddr(uint16(40000 + i))
		isn := uint32(1000 * (i + 1))
		if i == 2 {
			// accept first: the capture's reader ran late.
			tt.accept(src, retry4, at.Add(300*time.Microsecond))
			if _, fresh := tt.syn(src, retry4, isn, at, false); !fresh {
				t.Fatalf("attempt %d: SYN after its accept not taken as the attempt's start", i)
			}
			continue
		}
		if _, fresh := tt.syn(src, retry4, isn, at, false); !fresh {
			t.Fatalf("attempt %d: first SYN not fresh", i)
		}
		if i == 3 {
			// one retransmission flagged by the listener, one not
			if _, fresh := tt.syn(src, retry4, isn, at.Add(time.Second), true); fresh {
				t.Fatal("flagged retransmission counted as an attempt")
			}
			if _, fresh := tt.syn(src, retry4, isn, at.Add(2*time.Second), false); fresh {
				t.Fatal("SYN with a known source and ISN counted as an attempt")
			}
		}
		tt.accept(src, retry4, at.Add(time.Duration(i+1)*100*time.Microsecond))
	}
	if a, _ := tt.syn(srcAddr(39999), retry4, 7, at, true); a != nil {
		t.Fatal("retransmission of an attempt begun before the test was recorded")
	}
	if n := len(tt.attempts); n != 6 {
		t.Fatalf("%d attempts recorded, want 6", n)
	}
	syn := tt.analyze(SYN)
	acc := tt.analyze(Accept)
	for _, a := range []backoff.Analysis{syn, acc} {
		if !a.Passed || len(a.Series) != 1 || len(a.Series[0].Attempts) != 6 {
			t.Fatalf("analysis: passed %t, %d series; want passed, one series of 6", a.Passed, len(a.Series))
		}
	}
	if len(syn.Removed) != 2 || syn.Removed[0].Reason != backoff.Retransmission {
		t.Fatalf("SYN analysis removed %+v, want the two retransmissions", syn.Removed)
	}
	if got, want := syn.Series[0].BackoffMs(), []int32{1000, 1720, 2300, 4400, 6100}; !slices.Equal(got, want) {
		t.Fatalf("SYN backoff_ms %v, want %v", got, want)
	}
	sk := tt.skew()
	if sk.Attempts != 6 || sk.Min != 100*time.Microsecond || sk.Max != 600*time.Microsecond || sk.P50 != 300*time.Microsecond {
		t.Fatalf("skew %+v, want 6 attempts, 0.1/0.3/0.6 ms", sk)
	}
}

func TestTestClients(t *testing.T) {
	foreign := netip.MustParseAddrPort("198.18.0.2:4444")
	for _, tc := range []struct {
		name    string
		client  netip.AddrPort
		src     netip.AddrPort
		foreign bool
	}{
		{"loopback client, other loopback family", srcAddr(1), netip.MustParseAddrPort("[::1]:5"), false},
		{"loopback client, other host", srcAddr(1), foreign, true},
		{"remote client, itself on another port", foreign, netip.MustParseAddrPort("198.18.0.2:5"), false},
		{"remote client, loopback", foreign, srcAddr(5), true},
		{"unknown client", netip.AddrPort{}, foreign, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := newSession(tc.client, 3000, Accept)
			a := tt.accept(tc.src, retry4, t0)
			l := tt.live(a)
			got := l.removed != nil && l.removed.Reason == backoff.ForeignSource
			if got != tc.foreign {
				t.Fatalf("foreign = %t, want %t (line %+v)", got, tc.foreign, l)
			}
		})
	}
}

func TestLiveLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	tt := newSession(srcAddr(1), 0, Accept)
	at := t0
	for i, g := range []int{0, 1000, 400} {
		at = at.Add(time.Duration(g) * time.Millisecond)
		tt.live(tt.accept(srcAddr(uint16(100+i)), retry4, at)).log(log)
	}
	tt.live(tt.accept(netip.MustParseAddrPort("192.0.2.1:7"), retry4, at)).log(log)
	var verdicts []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		verdicts = append(verdicts, rec["verdict"].(string))
	}
	want := []string{"first", "ok", "early", "foreign"}
	if !slices.Equal(verdicts, want) {
		t.Fatalf("verdicts %v, want %v\n%s", verdicts, want, buf.String())
	}
}

func TestStopReply(t *testing.T) {
	if ok, ms := stopReply(backoff.Analysis{}); ok || ms == nil || len(ms) != 0 {
		t.Fatalf("no attempts: %t %v, want failed and an empty list", ok, ms)
	}
	// Two interleaved addresses, each conformant: passes per address, while
	// the reference server, merging them, fails the client.
	var attempts []backoff.Attempt
	at := t0
	for i, g := range append([]int{0}, specGaps...) {
		at = at.Add(time.Duration(g) * time.Millisecond)
		for j, dst := range []netip.AddrPort{retry6, retry4} {
			attempts = append(attempts, backoff.Attempt{Time: at.Add(time.Duration(j) * time.Millisecond),
				Src: srcAddr(uint16(2*i + j + 1)), Dst: dst})
		}
	}
	a := backoff.Analyze(attempts, backoff.Default(), backoff.Loopback())
	ok, ms := stopReply(a)
	if !ok || a.MergedReferencePassed {
		t.Fatalf("per address %t, merged %t; want passed per address, failed merged", ok, a.MergedReferencePassed)
	}
	if a.Series[0].Dst != retry6 || !slices.Equal(ms, []int32{1000, 1720, 2300, 4400, 6100}) {
		t.Fatalf("backoff_ms %v from %v, want the gaps of [::1]", ms, a.Series[0].Dst)
	}
	// One failing series fails the client.
	attempts[len(attempts)-1].Time = attempts[len(attempts)-1].Time.Add(3 * time.Second)
	if ok, _ := stopReply(backoff.Analyze(attempts, backoff.Default(), backoff.Loopback())); ok {
		t.Fatal("a late gap on the second address passed")
	}
}

func TestParseTimestamps(t *testing.T) {
	for _, ts := range []Timestamps{Auto, SYN, Accept} {
		got, err := ParseTimestamps(strings.ToUpper(ts.String()))
		if err != nil || got != ts {
			t.Fatalf("parse %q: %v, %v", ts, got, err)
		}
	}
	if _, err := ParseTimestamps("ack"); err == nil {
		t.Fatal("parsed an unknown name")
	}
}

func TestResultReport(t *testing.T) {
	tt := newSession(srcAddr(1), 3000, SYN)
	tt.n = 7
	at := t0
	for i, g := range []int{0, 1000, 1600, 2560} {
		at = at.Add(time.Duration(g) * time.Millisecond)
		tt.syn(srcAddr(uint16(100+i)), retry4, uint32(i+1), at, false)
		tt.accept(srcAddr(uint16(100+i)), retry4, at.Add(time.Millisecond))
	}
	tt.started = t0
	res := tt.result(at.Add(time.Second), true)
	if !res.Passed || res.SYN == nil || res.Accept == nil || res.Skew.Attempts != 4 {
		t.Fatalf("result %+v: want passed, both analyses, 4 skews", res)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"test":7`, `"passed":true`, `"backoff_ms":[1000,1600,2560]`, `"max_backoff_ms":3000`,
		`"timestamps":"syn"`, `"syn":{`, `"accept":{`, `"syn_to_accept":{"attempts":4,"min_ms":1,"p50_ms":1,"max_ms":1,"each_ms":[1,1,1,1]}`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b)
		}
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"reconnect test 7: client 127.0.0.1:1, max backoff 3000 ms, syn times",
		"SYN to accept: 4 attempts", "per attempt, ms: 1.000 1.000 1.000 1.000", "with accept times instead: passed", "ReconnectInfo: passed=true backoff_ms=[1000 1600 2560]"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
}
