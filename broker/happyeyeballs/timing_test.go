package happyeyeballs

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/synhold/synhold/listener"
)

// dialed is one finished dial of a racing client.
type dialed struct {
	family int
	conn   net.Conn
	err    error
	at     time.Time
}

// driverDial dials a pair the way a driver's Happy Eyeballs does: IPv6
// first, IPv4 stagger later (or as soon as IPv6 fails) unless IPv6 has
// connected by then; stagger 0 dials both at once. The first to connect
// wins and the other attempt is abandoned.
func driverDial(t *testing.T, p testPair, stagger time.Duration) dialed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	results := make(chan dialed, 2)
	dial := func(family int) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp"+strconv.Itoa(family), p.addr(family))
		results <- dialed{family, c, err, time.Now()}
	}
	go dial(6)
	started, done := 1, 0
	next := time.After(stagger)
	for {
		select {
		case <-next:
			next = nil
			go dial(4)
			started++
		case r := <-results:
			done++
			if r.err == nil {
				go closeRest(results, started-done)
				return r
			}
			t.Logf("IPv%d dial: %v", r.family, r.err)
			if next != nil {
				next = time.After(0)
			} else if done == started {
				t.Fatal("neither family connected")
			}
		}
	}
}

// closeRest closes the connections of the n dials still running.
func closeRest(results <-chan dialed, n int) {
	for range n {
		if r := <-results; r.conn != nil {
			r.conn.Close()
		}
	}
}

func TestDriverClient(t *testing.T) {
	needReplay(t)
	hs := startServer(t, Config{FastDelay: testFast, SlowDelay: testSlow})
	cases := []struct {
		name    string
		req     byte
		stagger time.Duration
	}{
		{"slow4/together", 0x04, 0},
		{"slow6/together", 0x06, 0},
		{"slow4/staggered", 0x04, 250 * time.Millisecond},
		{"slow6/staggered", 0x06, 250 * time.Millisecond},
		{"slow4/same-port", 0x14, 0},
		{"slow6/same-port/staggered", 0x16, 250 * time.Millisecond},
	}
	t.Cleanup(func() { checkLogs(t, hs, len(cases), true) })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := hs.pair(t, tc.req)
			win := driverDial(t, p, tc.stagger)
			defer win.conn.Close()
			fast := p.req.Fast()
			if win.family != fast {
				t.Errorf("connected over IPv%d, want the fast family IPv%d", win.family, fast)
			}
			if b := readByte(t, win.conn); b != FamilyByte(fast) {
				t.Errorf("read 0x%02x, want 0x%02x", b, FamilyByte(fast))
			}
			checkTiming(t, p.exchange, win.at, testFast, testTol)
			waitRefused(t, p.addr(p.req.Slow))
		})
	}
}

func TestLoneConnect(t *testing.T) {
	needReplay(t)
	hs := startServer(t, Config{FastDelay: testFast, SlowDelay: testSlow})
	t.Cleanup(func() { checkLogs(t, hs, 4, true) })
	for _, tc := range []struct {
		name   string
		req    byte
		family int // the one dialed
		delay  time.Duration
	}{
		{"slow4/dial-slow4", 0x04, 4, testSlow},
		{"slow4/dial-fast6", 0x04, 6, testFast},
		{"slow6/dial-slow6", 0x06, 6, testSlow},
		{"slow6/dial-fast4", 0x06, 4, testFast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialAlone(t, hs, tc.req, tc.family, tc.delay, testTol)
		})
	}
}

// dialAlone asks hs for a pair with request req and dials family alone:
// its handshake must complete delay after the reply, within tol, and the
// connection carry the family's byte.
func dialAlone(t *testing.T, hs *testServer, req byte, family int, delay, tol time.Duration) {
	t.Helper()
	p := hs.pair(t, req)
	c, err := net.DialTimeout("tcp"+strconv.Itoa(family), p.addr(family), 10*time.Second)
	at := time.Now()
	if err != nil {
		t.Fatalf("dial IPv%d: %v", family, err)
	}
	defer c.Close()
	checkTiming(t, p.exchange, at, delay, tol)
	if b := readByte(t, c); b != FamilyByte(family) {
		t.Errorf("read 0x%02x, want 0x%02x", b, FamilyByte(family))
	}
}

// checkLogs checks the log of every pair that got a connection (see
// checkPairLogs), and reports how late the server saw the handshakes. Run
// it from t.Cleanup, after the parallel subtests.
func checkLogs(t *testing.T, hs *testServer, pairs int, synack bool) {
	hs.log.waitRecords(t, "pair judged", pairs)
	if n := checkPairLogs(t, hs.log.all(), hs.cfg.FastDelay, hs.cfg.SlowDelay, synack); n != pairs {
		t.Errorf("%d pairs with a connected line, want %d", n, pairs)
	}
	for _, r := range hs.log.records("connected") {
		t.Logf("server: pair %v %v want_ms=%v synack_ms=%v late_us=%v accepted_ms=%v",
			r["pair"], r["family"], r["want_ms"], r["synack_ms"], r["late_us"], r["accepted_ms"])
	}
}

// fakeResolver resolves every name to ::1 and 127.0.0.1, through serveDNS.
func fakeResolver(t *testing.T) *net.Resolver {
	dns := serveDNS(t)
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp4", dns)
	}}
}

// serveDNS answers every A query with 127.0.0.1 and every AAAA query with
// ::1, on 127.0.0.1 UDP, until the test ends. It returns its address.
func serveDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := dNSAnswer(buf[:n]); err == nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// dNSAnswer builds the answer to the DNS query q.
func dNSAnswer(q []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, err
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.StartQuestions()
	for _, q := range qs {
		b.Question(q)
	}
	b.StartAnswers()
	for _, q := range qs {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: 60}
		switch q.Type {
		case dnsmessage.TypeA:
			b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
		case dnsmessage.TypeAAAA:
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: [16]byte{15: 1}})
		}
	}
	return b.Finish()
}

func TestGoDialer(t *testing.T) {
	needReplay(t)
	resolver := fakeResolver(t)
	hs := startServer(t, Config{FastDelay: testFast, SlowDelay: testSlow})
	for _, req := range []byte{0x14, 0x16} {
		t.Run(hexByte(req), func(t *testing.T) {
			t.Parallel()
			ips, err := resolver.LookupIPAddr(context.Background(), "happyeyeballs.test")
			if err != nil || len(ips) != 2 {
				t.Fatalf("resolver: %v, %v; want ::1 and 127.0.0.1", ips, err)
			}
			p := hs.pair(t, req)
			_, port, _ := net.SplitHostPort(p.addr4)
			d := net.Dialer{Resolver: resolver, Timeout: 10 * time.Second}
			c, err := d.Dial("tcp", net.JoinHostPort("happyeyeballs.test", port))
			at := time.Now()
			if err != nil {
				t.Fatalf("net.Dialer: %v", err)
			}
			defer c.Close()
			got := 6
			if c.RemoteAddr().(*net.TCPAddr).IP.To4() != nil {
				got = 4
			}
			if fast := p.req.Fast(); got != fast {
				t.Errorf("net.Dialer connected over IPv%d (%v), want the fast family IPv%d", got, c.RemoteAddr(), fast)
			}
			if b := readByte(t, c); b != FamilyByte(p.req.Fast()) {
				t.Errorf("read 0x%02x, want 0x%02x", b, FamilyByte(p.req.Fast()))
			}
			checkTiming(t, p.exchange, at, testFast, testTol)
		})
	}
}

// retransmitSlack is how far past the instant a handshake may complete
// with strategy Retransmit: up to the client's next SYN retransmission (1 s
// apart at first on Linux with tcp_syn_linear_timeouts, 1 s then 2 s
// without), plus the usual tolerance.
const retransmitSlack = 2*time.Second + testTol

func TestRetransmit(t *testing.T) {
	hs := startServer(t, Config{FastDelay: testFast, SlowDelay: testSlow, Strategy: listener.Retransmit})
	cases := []struct {
		name   string
		req    byte
		family int
		delay  time.Duration
	}{
		{"slow4/dial-fast6", 0x04, 6, testFast},
		{"slow4/dial-slow4", 0x04, 4, testSlow},
		{"slow6/dial-fast4", 0x06, 4, testFast},
	}
	t.Cleanup(func() { checkStrategy(t, hs, "retransmit", len(cases)) })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialAlone(t, hs, tc.req, tc.family, tc.delay, retransmitSlack)
		})
	}
}

// checkStrategy checks that the server logged n pairs, all with strategy
// want.
func checkStrategy(t *testing.T, hs *testServer, want string, n int) {
	rs := hs.log.records("pair requested")
	if len(rs) != n {
		t.Errorf("%d pairs logged, want %d", len(rs), n)
	}
	for _, r := range rs {
		if r["strategy"] != want {
			t.Errorf("pair %v logged strategy %v, want %s", r["pair"], r["strategy"], want)
		}
	}
}
