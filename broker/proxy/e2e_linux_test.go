package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// slack is how late past its instant a handshake may complete in these tests
// on a loaded 2-core machine (a client stalled 400 ms was seen with other
// benchmarks running); bench/ has the precise figures. It stays below the
// 1 s to a client's first SYN retransmission, which "at once" is told from.
const slack = 700 * time.Millisecond

// replayEnv is an env whose proxies replay held SYNs (CAP_NET_RAW).
func replayEnv(t *testing.T) *env {
	t.Helper()
	return replayEnvConfig(t, Config{})
}

// replayEnvConfig is replayEnv with a Config of its own.
func replayEnvConfig(t *testing.T, cfg Config) *env {
	t.Helper()
	skipWithoutReplay(t)
	cfg.Strategy = listener.Replay
	e := newEnvConfig(t, cfg)
	if e.srv.support.strategy != listener.Replay || e.srv.support.perConn != nil {
		t.Fatalf("support %+v, want replay", e.srv.support)
	}
	return e
}

// webUpstream is a real HTTP service on loopback.
func webUpstream(t *testing.T, network string) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from upstream")
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

// get sends an HTTP/1.0 GET on c and returns the body.
func get(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: upstream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// curlResult is what curl said about one request.
type curlResult struct {
	exit             int // 0, 7 (refused), 28 (timed out)...
	code             int
	connect, respond time.Duration // time_connect, time_starttransfer
	total            time.Duration
	body             string
}

// curl fetches url with curl --connect-timeout.
func curl(t *testing.T, url string, connectTimeout time.Duration) curlResult {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.SkipWithoutFeature(t, "curl(1) (apt-get install -y curl)", err)
	}
	cmd := exec.Command("curl", "-s", "--noproxy", "*", "--max-time", "20",
		"--connect-timeout", strconv.FormatFloat(connectTimeout.Seconds(), 'f', 3, 64),
		"-w", "\n%{http_code} %{time_connect} %{time_starttransfer} %{time_total}", url)
	out, err := cmd.Output()
	var r curlResult
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	r.body = s[:max(i, 0)]
	var c, st, tot float64
	if _, err := fmt.Sscanf(s[i+1:], "%d %g %g %g", &r.code, &c, &st, &tot); err != nil {
		t.Fatalf("curl output %q: %v", s, err)
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	r.connect, r.respond, r.total = sec(c), sec(st), sec(tot)
	return r
}

func newWebProxy(t *testing.T, e *env, listen, up string) *toxiclient.Proxy {
	t.Helper()
	p, err := e.client.CreateProxy("web", listen, up)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got < want || got > want+slack {
		t.Errorf("%s after %v, want %v (not before, at most %v late)", what, got, want, slack)
	}
}

// TestE2EHandshakeDelay: Go's net.Dialer and curl connect at the delay, not
// before, on each family; the request then goes through.
func TestE2EHandshakeDelay(t *testing.T) {
	testenv.SkipIfShort(t, "eight connections delayed 300 ms, four per family, one after another: 2.5 s")
	for _, fam := range []struct{ network, listen string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(fam.network, func(t *testing.T) {
			e := replayEnv(t)
			p := newWebProxy(t, e, fam.listen, webUpstream(t, fam.network))
			const delay = 300 * time.Millisecond
			if _, err := p.AddToxic("slow", "handshake_delay", "", 1, toxiclient.Attributes{"delay": delay.Milliseconds()}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				start := time.Now()
				c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", p.Listen)
				took := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				within(t, "net.Dialer connected", took, delay)
				if body := get(t, c); body != "hello from upstream" {
					t.Errorf("body %q", body)
				}
				c.Close()
			}
			r := curl(t, "http://"+p.Listen+"/", 5*time.Second)
			if r.exit != 0 || r.code != 200 || r.body != "hello from upstream" {
				t.Fatalf("curl: %+v", r)
			}
			within(t, "curl connected", r.connect, delay)
			waitLines(t, e, 4, `"level":"INFO"`, `"msg":"syn held"`, `"want"`, `"hold_us"`)
			waitLines(t, e, 4, `"level":"INFO"`, `"msg":"syn-ack sent"`, `"want"`, `"late_us"`)
		})
	}
}

// waitLines waits until at least n log lines contain every one of subs.
func waitLines(t *testing.T, e *env, n int, subs ...string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%d log lines with %q", n, subs), func() bool { return len(e.log.lines(subs...)) >= n })
}

type dialResult struct {
	c    net.Conn
	err  error
	done time.Time
}

func dialAsync(addr string, timeout time.Duration) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		c, err := (&net.Dialer{Timeout: timeout}).Dial("tcp", addr)
		ch <- dialResult{c, err, time.Now()}
	}()
	return ch
}

// TestE2EHandshakeHold: clients time out while the hold is on; a handshake
// still pending completes at once when the toxic is removed.
func TestE2EHandshakeHold(t *testing.T) {
	e := replayEnv(t)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	if _, err := p.AddToxic("hold", "handshake_hold", "", 1, nil); err != nil {
		t.Fatal(err)
	}
	r := curl(t, "http://"+p.Listen+"/", time.Second)
	// curl's own total can end a fraction of a millisecond short of its
	// timeout (seen: 999.797 ms): its clock and its timer are read apart.
	if r.exit != 28 || r.total < time.Second-10*time.Millisecond {
		t.Fatalf("curl --connect-timeout 1 against a hold: %+v, want exit 28 after 1 s", r)
	}
	_, err := (&net.Dialer{Timeout: 500 * time.Millisecond}).Dial("tcp", p.Listen)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("net.Dialer against a hold: %v, want a timeout", err)
	}
	held := len(e.log.lines(`"msg":"syn held"`, `"until"`))
	pending := dialAsync(p.Listen, 10*time.Second)
	waitLines(t, e, held+1, `"msg":"syn held"`, `"until"`)
	removed := time.Now()
	if err := p.RemoveToxic("hold"); err != nil {
		t.Fatal(err)
	}
	res := <-pending
	if res.err != nil {
		t.Fatalf("after the hold was removed: %v", res.err)
	}
	defer res.c.Close()
	// The client's next retransmission is ~1 s after its SYN: completing
	// well before shows the held SYN was replayed at once.
	if d := res.done.Sub(removed); d > slack {
		t.Errorf("connected %v after the hold was removed, want at once", d)
	}
	if body := get(t, res.c); body != "hello from upstream" {
		t.Errorf("body %q", body)
	}
	waitLines(t, e, 1, `"msg":"handshakes released"`, `"completes":"now"`)
}

// TestE2EHandshakeRefuse: connect fails with "connection refused" at the
// delay, not before.
func TestE2EHandshakeRefuse(t *testing.T) {
	e := replayEnv(t)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	const delay = 200 * time.Millisecond
	if _, err := p.AddToxic("no", "handshake_refuse", "", 1, toxiclient.Attributes{"delay": delay.Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", p.Listen)
	took := time.Since(start)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("net.Dialer: %v, want connection refused", err)
	}
	within(t, "net.Dialer refused", took, delay)
	r := curl(t, "http://"+p.Listen+"/", 5*time.Second)
	if r.exit != 7 {
		t.Fatalf("curl: %+v, want exit 7 (could not connect)", r)
	}
	within(t, "curl refused", r.total, delay)
	waitLines(t, e, 2, `"msg":"refused"`, `"late_us"`)
}

// TestE2EDelayAndLatency: a handshake toxic and a data toxic on one proxy.
func TestE2EDelayAndLatency(t *testing.T) {
	e := replayEnv(t)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	const delay, latency = 150 * time.Millisecond, 250 * time.Millisecond
	if _, err := p.AddToxic("slow", "handshake_delay", "", 1, toxiclient.Attributes{"delay": delay.Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("lag", "latency", "downstream", 1, toxiclient.Attributes{"latency": latency.Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	r := curl(t, "http://"+p.Listen+"/", 5*time.Second)
	if r.exit != 0 || r.code != 200 || r.body != "hello from upstream" {
		t.Fatalf("curl: %+v", r)
	}
	within(t, "curl connected", r.connect, delay)
	if d := r.respond - r.connect; d < latency {
		t.Errorf("first byte %v after connecting, want at least the %v latency", d, latency)
	}
}

// TestE2EToxicity: handshake_refuse with toxicity 0.5 refuses some
// connections and lets the others through.
func TestE2EToxicity(t *testing.T) {
	e := replayEnv(t)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	if _, err := p.AddToxic("half", "handshake_refuse", "", 0.5, toxiclient.Attributes{"delay": 0}); err != nil {
		t.Fatal(err)
	}
	refused := 0
	const n = 40
	for range n {
		c, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			refused++
		case err != nil:
			t.Fatal(err)
		default:
			c.Close()
		}
	}
	if refused == 0 || refused == n {
		t.Fatalf("toxicity 0.5: %d of %d refused", refused, n)
	}
}

// TestE2EDeleteWhileHeld: deleting or disabling a proxy with held
// handshakes holds nothing any more: each client's next SYN finds the port
// closed and is refused.
func TestE2EDeleteWhileHeld(t *testing.T) {
	testenv.SkipIfShort(t, "two runs of clients refused at their first SYN retransmission, 1 s each: 2 s")
	for _, how := range []string{"delete", "disable"} {
		t.Run(how, func(t *testing.T) {
			e := replayEnv(t)
			p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
			if _, err := p.AddToxic("hold", "handshake_hold", "", 1, nil); err != nil {
				t.Fatal(err)
			}
			const n = 5
			var pending []<-chan dialResult
			for range n {
				pending = append(pending, dialAsync(p.Listen, 10*time.Second))
			}
			waitLines(t, e, n, `"msg":"syn held"`, `"until"`)
			if err := deleteOrDisable(p, how); err != nil {
				t.Fatal(err)
			}
			for _, ch := range pending {
				r := <-ch
				if !errors.Is(r.err, syscall.ECONNREFUSED) {
					t.Errorf("a client held by a proxy gone with %s: %v, want refused at its next SYN", how, r.err)
				}
			}
		})
	}
}

// TestE2ERetransmitOnly: without replay, handshake_delay is refused with the
// capability named; handshake_hold works, and completes at the client's
// next SYN retransmission once removed.
func TestE2ERetransmitOnly(t *testing.T) {
	e := newEnv(t, listener.Retransmit)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	_, err := p.AddToxic("slow", "handshake_delay", "", 1, toxiclient.Attributes{"delay": 100})
	if err == nil || !strings.Contains(err.Error(), "HTTP 501") || !strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Fatalf("handshake_delay without replay: %v, want a 501 naming CAP_NET_RAW", err)
	}
	if _, err := p.AddToxic("hold", "handshake_hold", "", 1, nil); err != nil {
		t.Fatal(err)
	}
	_, err = (&net.Dialer{Timeout: 500 * time.Millisecond}).Dial("tcp", p.Listen)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("net.Dialer against a hold: %v, want a timeout", err)
	}
	port := int(netip.MustParseAddrPort(p.Listen).Port())
	start := time.Now()
	pending := dialAsync(p.Listen, 10*time.Second)
	testenv.WaitFor(t, 5*time.Second, "the client's SYN_SENT socket", func() bool { return testenv.SYNSent(t, port) })
	if err := p.RemoveToxic("hold"); err != nil {
		t.Fatal(err)
	}
	r := <-pending
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.Close()
	// Linux retransmits a SYN 1 s after the first.
	if d := r.done.Sub(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Errorf("connected %v after dialing, want at the first retransmission (~1 s)", d)
	}
	waitLines(t, e, 1, `"msg":"handshakes released"`, `retransmission`)
}

// TestE2EHoldOverDelay: with a hold and a delay on one proxy the hold wins;
// removing it completes the held handshake at once and leaves the delay for
// the next connections.
func TestE2EHoldOverDelay(t *testing.T) {
	e := replayEnv(t)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	const delay = 200 * time.Millisecond
	if _, err := p.AddToxic("slow", "handshake_delay", "", 1, toxiclient.Attributes{"delay": delay.Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("hold", "handshake_hold", "", 1, nil); err != nil {
		t.Fatal(err)
	}
	pending := dialAsync(p.Listen, 10*time.Second)
	waitLines(t, e, 1, `"msg":"syn held"`, `"until"`)
	removed := time.Now()
	if err := p.RemoveToxic("hold"); err != nil {
		t.Fatal(err)
	}
	r := <-pending
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.Close()
	if d := r.done.Sub(removed); d > slack {
		t.Errorf("the held handshake completed %v after the hold was removed, want at once", d)
	}
	waitLines(t, e, 1, `"msg":"held handshakes released"`)
	start := time.Now()
	c, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	within(t, "the next connection", time.Since(start), delay)
}

// TestE2EToxicAfterQuietSpell: a proxy that carried connections with no
// handshake toxic (its listener out of the capture meanwhile) delays the
// first connection dialled once a handshake_delay toxic is added, every
// time the toxic comes back: the capture has its port again before the
// toxic-add call returns.
func TestE2EToxicAfterQuietSpell(t *testing.T) {
	e := replayEnv(t)
	p := newWebProxy(t, e, "127.0.0.1:0", webUpstream(t, "tcp4"))
	const delay = 200 * time.Millisecond
	dial := func() time.Duration {
		t.Helper()
		start := time.Now()
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", p.Listen)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return took
	}
	for range 3 {
		for range 5 {
			if took := dial(); took > slack {
				t.Errorf("with no handshake toxic: connected after %v, want at once", took)
			}
		}
		if _, err := p.AddToxic("slow", "handshake_delay", "", 1, toxiclient.Attributes{"delay": delay.Milliseconds()}); err != nil {
			t.Fatal(err)
		}
		within(t, "the first connection after the toxic was added", dial(), delay)
		if err := p.RemoveToxic("slow"); err != nil {
			t.Fatal(err)
		}
	}
}
