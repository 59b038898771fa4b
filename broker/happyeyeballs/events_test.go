package happyeyeballs

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/listener"
)

// eventPair is a pair with fake listeners and a JSON log, for feeding its
// event callbacks by hand.
func eventPair(t *testing.T) (*pair, *logBuffer) {
	t.Helper()
	log := &logBuffer{}
	s := newServer(t, Config{Logger: slog.New(slog.NewJSONHandler(log, nil)), Spares: 0})
	fac := &fakeFactory{}
	s.listen = fac.listen
	p, err := s.openPair(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.closeListeners)
	p.start(request{Byte: 0x04, Op: opPair, Slow: 4})
	return p, log
}

func msgs(l *logBuffer) []string {
	var out []string
	for _, r := range l.all() {
		out = append(out, r["msg"].(string))
	}
	return out
}

// TestEventLinesInOrder feeds a side's events as its listener delivers
// them and checks the lines: nothing before the "pair requested" line, and
// the winner's wait for its side's release and SYN-ACK.
func TestEventLinesInOrder(t *testing.T) {
	p, log := eventPair(t)
	sd := p.sides[1] // IPv6, the fast side
	on := p.onEvent(sd)
	client := netip.MustParseAddrPort("[::1]:5000")
	want := sd.want
	on(listener.Event{Kind: listener.SYNSeen, Client: client, Time: p.started.Add(time.Millisecond)})
	if got := msgs(log); len(got) != 0 {
		t.Fatalf("lines before the pair was announced: %v", got)
	}
	p.announce("127.0.0.1:1", p.started, p.started)
	on(listener.Event{Kind: listener.Released, Time: want, Want: want, Replayed: 1})
	waited := make(chan time.Time, 1)
	go func() {
		at, seen := sd.waitEvents(client, true, 10*time.Second)
		if !seen {
			at = time.Time{}
		}
		waited <- at
	}()
	select {
	case <-waited:
		t.Fatal("waitEvents returned before the SYN-ACK")
	case <-time.After(50 * time.Millisecond):
	}
	on(listener.Event{Kind: listener.SYNACKSent, Client: client, Time: want.Add(50 * time.Microsecond), Want: want})
	select {
	case at := <-waited:
		if !at.Equal(want.Add(50 * time.Microsecond)) {
			t.Errorf("waitEvents gave the SYN-ACK at %v, want %v", at, want.Add(50*time.Microsecond))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitEvents did not return after the release and the SYN-ACK")
	}
	log.waitRecords(t, "syn-ack sent", 1)
	if got, wantMsgs := msgs(log), []string{"pair requested", "syn seen", "released", "syn-ack sent"}; !slices.Equal(got, wantMsgs) {
		t.Errorf("lines %v, want %v", got, wantMsgs)
	}
}

// TestFaultLogged checks that a listener fault is logged at error level
// with its cause, and that the winner's line then waits for no SYN-ACK.
func TestFaultLogged(t *testing.T) {
	p, log := eventPair(t)
	p.announce("127.0.0.1:1", p.started, p.started)
	sd := p.sides[0]
	on := p.onEvent(sd)
	on(listener.Event{Kind: listener.Released, Time: sd.want, Want: sd.want})
	on(listener.Event{Kind: listener.Fault, Time: time.Now(), Err: errors.New("listener: capture: read: EIO; SYNs from now on complete at their client's retransmission")})
	start := time.Now()
	if _, seen := sd.waitEvents(netip.MustParseAddrPort("127.0.0.1:5000"), true, 10*time.Second); seen || time.Since(start) > 5*time.Second {
		t.Errorf("waitEvents after a fault: seen %v after %v, want no SYN-ACK and no wait", seen, time.Since(start))
	}
	log.waitRecords(t, "listener fault", 1)
	rs := log.records("listener fault")
	if len(rs) != 1 || rs[0]["level"] != "ERROR" || rs[0]["family"] != "ipv4" || rs[0]["err"] == nil {
		t.Errorf("fault lines %v, want one at ERROR naming ipv4 and the error", rs)
	}
}

// TestLinesAcrossSidesInTimeOrder feeds the two sides' SYNs in the order
// opposite to their times, as the two listeners' goroutines may deliver
// them, and checks that the lines come in time order.
func TestLinesAcrossSidesInTimeOrder(t *testing.T) {
	p, log := eventPair(t)
	p.announce("127.0.0.1:1", p.started, p.started)
	at := p.started.Add(time.Millisecond)
	p.onEvent(p.sides[0])(listener.Event{Kind: listener.SYNSeen, Client: netip.MustParseAddrPort("127.0.0.1:5000"), Time: at.Add(20 * time.Microsecond)})
	p.onEvent(p.sides[1])(listener.Event{Kind: listener.SYNSeen, Client: netip.MustParseAddrPort("[::1]:5000"), Time: at.Add(10 * time.Microsecond)})
	log.waitRecords(t, "syn seen", 2)
	var fams []any
	for _, r := range log.records("syn seen") {
		fams = append(fams, r["family"])
	}
	if len(fams) != 2 || fams[0] != "ipv6" || fams[1] != "ipv4" {
		t.Errorf("syn seen lines for %v, want ipv6 (the earlier) then ipv4", fams)
	}
}

// TestJudgedLineInWords feeds a pair the SYNs of a client that tries IPv4
// first and IPv6 250.5 ms later, with a retransmitted IPv4 SYN (not a new
// attempt), and checks the text format's "pair judged" line: the same
// fields, the sentence in words.
func TestJudgedLineInWords(t *testing.T) {
	var log logBuffer
	s := newServer(t, Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	s.listen = (&fakeFactory{replay: true}).listen
	p, err := s.openPair(true)
	if err != nil {
		t.Fatal(err)
	}
	p.start(request{Byte: 0x14, Op: opPair, Slow: 4, SamePort: true})
	if !s.addPair(p) {
		t.Fatal("server closing")
	}
	p.announce("127.0.0.1:1", p.started, p.started)
	v4, v6 := netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("[::1]:5001")
	t0 := p.started.Add(time.Millisecond)
	p.onEvent(p.sides[0])(listener.Event{Kind: listener.SYNSeen, Client: v4, Time: t0})
	p.onEvent(p.sides[1])(listener.Event{Kind: listener.SYNSeen, Client: v6, Time: t0.Add(250500 * time.Microsecond)})
	p.onEvent(p.sides[0])(listener.Event{Kind: listener.SYNSeen, Client: v4, Time: t0.Add(time.Second), Retransmit: true})
	p.close("timeout: nobody connected")
	var line string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, `msg="pair judged"`) {
			line = l
		}
	}
	want := `pair=1 first=ipv4 attempt_delay_ms=250.50 winner=none verdict=deviates deviations=[IPv4First] ` +
		`why="The client tried IPv4 first although IPv6 was offered, started IPv6 250.50 ms later, and connected over neither family before the pair closed (timeout: nobody connected)."`
	if !strings.HasSuffix(line, want) {
		t.Errorf("pair judged line\n%s\nwant it to end\n%s", line, want)
	}
	j, known, closed := s.judgementOf(p.sides[0].port())
	if !known || !closed || j.Pair != 1 || j.Verdict != Deviates {
		t.Errorf("judgementOf: %+v %v %v", j, known, closed)
	}
	if r := s.Report(); r.Summary.Pairs != 1 || len(r.Pairs) != 1 || len(r.Pairs[0].Marks) != 3 || r.Pairs[0].Marks[2].Kind != "retransmit" {
		t.Errorf("report %+v", r)
	}
}
