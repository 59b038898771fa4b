package happyeyeballs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// Delays of the test pairs: short, so the suite stays quick, and far enough
// apart that a loaded machine cannot blur them.
const (
	testFast = 400 * time.Millisecond
	testSlow = 1300 * time.Millisecond
	// testTol is how late a handshake may complete, as the client sees
	// it, on a loaded 2-core machine with the race detector.
	testTol = 250 * time.Millisecond
	// maxEarly is how far before its instant package listener lets a
	// replayed SYN's SYN-ACK come (its early start's bound, in its doc):
	// a test that failed on any early SYN-ACK would fail on what the
	// package promises.
	maxEarly = 25 * time.Microsecond
)

// logBuffer collects a server's JSON log lines, safe for concurrent writes.
type logBuffer struct{ logtest.Buffer }

// records returns the decoded log lines whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, m := range l.all() {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// all returns every decoded log line, in order.
func (l *logBuffer) all() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitRecords waits until the log holds n lines of msg, for up to 10 s.
func (l *logBuffer) waitRecords(t *testing.T, msg string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(l.records(msg)) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d %q lines after 10 s, want %d", len(l.records(msg)), msg, n)
		}
	}
}

// checkPairLogs checks the lines of every pair that got a connection: they
// begin with "pair requested" and end with "pair closed" and "pair judged"; the winner's side
// logs "released", then its SYN-ACK (if synack), then "connected", whose
// figures match those lines; the instant asked for is the delay of the
// winning family after the pair's start. It returns how many pairs it
// checked.
func checkPairLogs(t *testing.T, lines []map[string]any, fast, slow time.Duration, synack bool) int {
	t.Helper()
	byPair := make(map[float64][]map[string]any)
	var ids []float64
	for _, l := range lines {
		id, ok := l["pair"].(float64)
		if !ok {
			continue
		}
		if byPair[id] == nil {
			ids = append(ids, id)
		}
		byPair[id] = append(byPair[id], l)
	}
	checked := 0
	for _, id := range ids {
		ls := byPair[id]
		msgs := make([]any, len(ls))
		for i, l := range ls {
			msgs[i] = l["msg"]
		}
		conn := -1
		for i, l := range ls {
			if l["msg"] == "connected" {
				conn = i
			}
		}
		if conn < 0 {
			continue
		}
		checked++
		c := ls[conn]
		if n := len(msgs); msgs[0] != "pair requested" || n < 2 || msgs[n-2] != "pair closed" || msgs[n-1] != "pair judged" {
			t.Errorf("pair %v: lines %v, want pair requested first, then pair closed and pair judged last", id, msgs)
		}
		family, client := c["family"], c["client"]
		var released, ack map[string]any
		for _, l := range ls[:conn] {
			switch {
			case l["family"] != family:
			case l["msg"] == "released":
				released = l
			case l["msg"] == "syn-ack sent" && l["client"] == client:
				if released == nil {
					t.Errorf("pair %v %v: syn-ack sent before released: %v", id, family, msgs)
				}
				ack = l
			}
		}
		for _, l := range ls[conn+1:] {
			if l["family"] == family && (l["msg"] == "released" || l["msg"] == "syn-ack sent" && l["client"] == client) {
				t.Errorf("pair %v %v: %v logged after connected: %v", id, family, l["msg"], msgs)
			}
		}
		if released == nil {
			t.Errorf("pair %v %v: no released line before connected: %v", id, family, msgs)
			continue
		}
		delay := fast
		if r := ls[0]; (r["slow"] == "ipv4") == (family == "ipv4") {
			delay = slow
		}
		start, want := parseStamp(t, c["start"]), parseStamp(t, c["want"])
		if want.Sub(start) != delay || c["want"] != released["want"] || c["start"] != ls[0]["start"] {
			t.Errorf("pair %v: connected start %v want %v, released want %v, requested start %v; want %v after the start",
				id, c["start"], c["want"], released["want"], ls[0]["start"], delay)
		}
		if !synack {
			continue
		}
		if c["synack_seen"] != true || ack == nil || c["synack"] != ack["synack"] {
			t.Errorf("pair %v: connected synack_seen %v synack %v; the syn-ack line %v", id, c["synack_seen"], c["synack"], ack)
			continue
		}
		if st := parseStamp(t, c["synack"]); want.Sub(st) > maxEarly {
			t.Errorf("pair %v: SYN-ACK at %v, %v before the instant %v; want at most %v before", id, c["synack"], want.Sub(st), c["want"], maxEarly)
		}
	}
	return checked
}

var stampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$`)

// parseStamp parses a time the log wrote as RFC 3339 with nanoseconds.
func parseStamp(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !stampRE.MatchString(s) {
		t.Errorf("time %q: not RFC 3339 with nine digits: %v", s, err)
	}
	return ts
}

// testServer is a Server under test, serving on 127.0.0.1 and ::1.
type testServer struct {
	*Server
	ctl4, ctl6 string
	log        *logBuffer
	served     chan error
}

// startServer serves a Server of cfg on ephemeral control ports, logging
// JSON into a buffer, and shuts it down when the test ends.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cfg.Strategy = holdStrategy(t, cfg.Strategy)
	hs := &testServer{log: &logBuffer{}, served: make(chan error, 2)}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(hs.log, nil))
	}
	s := newServer(t, cfg)
	hs.Server = s
	ln4 := mustListen(t, "tcp4", "127.0.0.1:0")
	ln6 := mustListen(t, "tcp6", "[::1]:0")
	hs.ctl4, hs.ctl6 = ln4.Addr().String(), ln6.Addr().String()
	for _, ln := range []net.Listener{ln4, ln6} {
		go func() { hs.served <- s.Serve(ln) }()
	}
	t.Cleanup(func() { hs.shutdown(t) })
	hs.waitSpares(t)
	return hs
}

// waitSpares waits until the server has opened its spare pairs, so that
// what a test counts does not change under it.
func (hs *testServer) waitSpares(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		hs.mu.Lock()
		n, filling := len(hs.spares), hs.filling
		hs.mu.Unlock()
		if n == hs.cfg.Spares && !filling {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d spare pairs open after 10 s", n, hs.cfg.Spares)
		}
	}
}

// shutdown stops the server and checks that both Serve calls returned nil.
func (hs *testServer) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	for range 2 {
		select {
		case err := <-hs.served:
			if err != nil {
				t.Errorf("Serve returned %v after shutdown, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after Shutdown")
		}
	}
}

// newServer is NewServer for a cfg the test knows to be valid.
func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return s
}

func mustListen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	return ln
}

// exchange is one control exchange as the client saw it.
type exchange struct {
	reply         []byte
	sent, replied time.Time
}

// ask sends b on a new control connection to addr and reads the whole
// reply, up to the server's close.
func ask(t *testing.T, addr string, b byte) exchange {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial control %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	a := exchange{sent: time.Now()}
	if _, err := c.Write([]byte{b}); err != nil {
		t.Fatalf("send 0x%02x: %v", b, err)
	}
	a.reply, err = io.ReadAll(c)
	a.replied = time.Now()
	if err != nil {
		t.Fatalf("read the reply to 0x%02x: %v (got % x)", b, err, a.reply)
	}
	return a
}

// pair asks for a pair and returns its addresses and pair id (from the
// log) along with the exchange.
type testPair struct {
	exchange
	addr4, addr6 string
	req          request
}

func (hs *testServer) pair(t *testing.T, b byte) testPair {
	t.Helper()
	req, err := parseRequest(b)
	if err != nil || req.Op != opPair {
		t.Fatalf("0x%02x is not a pair request", b)
	}
	req.SamePort = req.SamePort || hs.cfg.SamePort
	a := ask(t, hs.ctl4, b)
	want := 5
	if req.SamePort {
		want = 3
	}
	if len(a.reply) != want || a.reply[0] != replyOK {
		t.Fatalf("0x%02x: reply % x, want 0x01 and %d port bytes", b, a.reply, want-1)
	}
	p4 := binary.BigEndian.Uint16(a.reply[1:])
	p6 := p4
	if !req.SamePort {
		p6 = binary.BigEndian.Uint16(a.reply[3:])
	}
	return testPair{
		exchange: a, req: req,
		addr4: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p4))),
		addr6: net.JoinHostPort("::1", strconv.Itoa(int(p6))),
	}
}

// addr returns the pair's address of family.
func (p testPair) addr(family int) string {
	if family == 4 {
		return p.addr4
	}
	return p.addr6
}

// needReplay skips a test whose timing needs strategy Replay.
func needReplay(t *testing.T) {
	t.Helper()
	s, err := listener.Probe()
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	if s != listener.Replay {
		t.Fatalf("the probe found strategy %v and no error; the timing needs replay", s)
	}
}

// holdStrategy returns the strategy a test server uses when it asks for
// none: Replay where it can, else Retransmit if this kernel lets the process
// hold SYNs at all (some refuse the filter without CAP_NET_ADMIN); it skips
// the test otherwise.
func holdStrategy(t *testing.T, s listener.Strategy) listener.Strategy {
	t.Helper()
	if s == listener.Auto {
		if p, _ := listener.Probe(); p == listener.Replay {
			return p
		}
		s = listener.Retransmit
	}
	h, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: s})
	testenv.SkipWithoutPrivilege(t, err, holdCapability(s))
	h.Close()
	return s
}

// holdCapability names what a process lacks when strategy s cannot hold
// handshakes: CAP_NET_RAW for the capture that replay needs, else
// CAP_NET_ADMIN for a kernel that refuses the holding socket filter
// without it.
func holdCapability(s listener.Strategy) string {
	if s == listener.Replay {
		return "CAP_NET_RAW"
	}
	return "CAP_NET_ADMIN (this kernel refuses the SYN-holding socket filter without it)"
}

// checkTiming checks that a handshake completed at when, no earlier than
// delay after the request was sent (the instant is after the bind, which is
// after the request), and no later than delay+tol after the reply came.
func checkTiming(t *testing.T, a exchange, when time.Time, delay, tol time.Duration) {
	t.Helper()
	early, late := when.Sub(a.sent)-delay, when.Sub(a.replied)-delay
	t.Logf("completed %v after the request was sent, %v after the reply (asked %v)",
		when.Sub(a.sent).Round(time.Microsecond), when.Sub(a.replied).Round(time.Microsecond), delay)
	if -early > maxEarly {
		t.Errorf("handshake completed %v before the instant (%v after the request, want >= %v)", -early, when.Sub(a.sent), delay)
	}
	if late > tol {
		t.Errorf("handshake completed %v after the reply, want <= %v", when.Sub(a.replied), delay+tol)
	}
}

// readByte reads the one byte a pair's winner gets, and checks the close.
func readByte(t *testing.T, c net.Conn) byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the family byte: %v", err)
	}
	if len(b) != 1 {
		t.Fatalf("the winner read % x, want one byte then EOF", b)
	}
	return b[0]
}

// waitRefused waits until connecting to addr is refused: the listener
// behind it is closed.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			c.Close()
		}
	}
	t.Errorf("%s still open after the pair should have closed (last dial: %v)", addr, err)
}

func TestParseRequest(t *testing.T) {
	valid := map[byte]request{
		0x04: {Byte: 0x04, Op: opPair, Slow: 4},
		0x06: {Byte: 0x06, Op: opPair, Slow: 6},
		0x14: {Byte: 0x14, Op: opPair, Slow: 4, SamePort: true},
		0x16: {Byte: 0x16, Op: opPair, Slow: 6, SamePort: true},
		0xF0: {Byte: 0xF0, Op: opPing},
		0xFF: {Byte: 0xFF, Op: opShutdown},
		0xE0: {Byte: 0xE0, Op: opJudge},
	}
	for i := range 256 {
		b := byte(i)
		got, err := parseRequest(b)
		want, ok := valid[b]
		switch {
		case ok && (err != nil || got != want):
			t.Errorf("0x%02x: got %+v, %v; want %+v", b, got, err, want)
		case !ok && !errors.Is(err, errUnknownRequest):
			t.Errorf("0x%02x: got %+v, %v; want errUnknownRequest", b, got, err)
		}
	}
}

func TestReplyEncoding(t *testing.T) {
	for _, tc := range []struct {
		b    byte
		want []byte
	}{
		{0x04, []byte{1, 0x12, 0x34, 0xab, 0xcd}},
		{0x06, []byte{1, 0x12, 0x34, 0xab, 0xcd}},
		{0x14, []byte{1, 0x12, 0x34}},
		{0x16, []byte{1, 0x12, 0x34}},
		{0xF0, []byte{1}},
		{0xFF, []byte{1}},
	} {
		r, _ := parseRequest(tc.b)
		if got := encodeReply(r, 0x1234, 0xabcd); !bytes.Equal(got, tc.want) {
			t.Errorf("0x%02x: reply % x, want % x", tc.b, got, tc.want)
		}
	}
}
