package proxy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/synhold/synhold/listener"
)

func wrap(name string, toxicity float32, t toxics.Toxic) toxics.Toxic {
	typ := map[string]string{
		"*proxy.HandshakeDelay": typeDelay, "*proxy.HandshakeHold": typeHold, "*proxy.HandshakeRefuse": typeRefuse,
	}[fmt.Sprintf("%T", t)]
	return &toxics.ToxicWrapper{Toxic: t, Name: name, Type: typ, Toxicity: toxicity}
}

// fixedRand draws the same numbers every time.
type fixedRand struct {
	f float32
	n int64
}

func (r fixedRand) Float32() float32     { return r.f }
func (r fixedRand) Int64N(n int64) int64 { return min(r.n, n-1) }

func TestPlanDecide(t *testing.T) {
	syn := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	latency := &toxics.ToxicWrapper{Toxic: &toxics.LatencyToxic{Latency: 100}, Type: "latency", Toxicity: 1}
	tests := []struct {
		name  string
		chain []toxics.Toxic
		rng   fixedRand
		want  verdict
		hold  bool
	}{
		{"no toxic", nil, fixedRand{}, verdict{at: syn}, false},
		{"data toxics only", []toxics.Toxic{latency}, fixedRand{}, verdict{at: syn}, false},
		{"delay", []toxics.Toxic{wrap("d", 1, &HandshakeDelay{Delay: 250})}, fixedRand{}, verdict{at: syn.Add(250 * time.Millisecond)}, false},
		{"delay with jitter, low draw", []toxics.Toxic{wrap("d", 1, &HandshakeDelay{Delay: 250, Jitter: 50})}, fixedRand{n: 0},
			verdict{at: syn.Add(200 * time.Millisecond)}, false},
		{"delay with jitter, high draw", []toxics.Toxic{wrap("d", 1, &HandshakeDelay{Delay: 250, Jitter: 50})}, fixedRand{n: 1 << 62},
			verdict{at: syn.Add(300*time.Millisecond - 1)}, false},
		{"jitter beyond the delay never goes before the SYN", []toxics.Toxic{wrap("d", 1, &HandshakeDelay{Delay: 10, Jitter: 50})}, fixedRand{n: 0},
			verdict{at: syn}, false},
		{"delay missed by toxicity", []toxics.Toxic{wrap("d", 0.5, &HandshakeDelay{Delay: 250})}, fixedRand{f: 0.5}, verdict{at: syn}, false},
		{"delay hit by toxicity", []toxics.Toxic{wrap("d", 0.5, &HandshakeDelay{Delay: 250})}, fixedRand{f: 0.49},
			verdict{at: syn.Add(250 * time.Millisecond)}, false},
		{"refuse", []toxics.Toxic{wrap("r", 1, &HandshakeRefuse{Delay: 40})}, fixedRand{}, verdict{at: syn.Add(40 * time.Millisecond), refuse: true}, false},
		{"hold", []toxics.Toxic{wrap("h", 1, &HandshakeHold{})}, fixedRand{}, verdict{}, true},
		{"hold missed, delay applies", []toxics.Toxic{wrap("h", 0.1, &HandshakeHold{}), wrap("d", 1, &HandshakeDelay{Delay: 5})}, fixedRand{f: 0.5},
			verdict{at: syn.Add(5 * time.Millisecond)}, true},
		{"delays add up, refuse at their sum", []toxics.Toxic{wrap("d", 1, &HandshakeDelay{Delay: 100}), latency, wrap("r", 1, &HandshakeRefuse{Delay: 20})},
			fixedRand{}, verdict{at: syn.Add(120 * time.Millisecond), refuse: true}, false},
		{"hold wins", []toxics.Toxic{wrap("d", 1, &HandshakeDelay{Delay: 100}), wrap("h", 1, &HandshakeHold{})}, fixedRand{}, verdict{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan(tt.chain)
			if got := p.decide(syn, tt.rng); got != tt.want {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
			if p.hold != tt.hold {
				t.Errorf("hold = %v, want %v", p.hold, tt.hold)
			}
		})
	}
}

// fakeGate records what the proxy asks of its listener.
type fakeGate struct {
	net.Listener
	strategy listener.Strategy
	mu       sync.Mutex
	calls    []string
	holdErr  error
}

func (g *fakeGate) record(c string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, c)
}

func (g *fakeGate) took() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := strings.Join(g.calls, " ")
	g.calls = nil
	return s
}

func (g *fakeGate) Hold() error                 { g.record("hold"); return g.holdErr }
func (g *fakeGate) Release()                    { g.record("release") }
func (g *fakeGate) ReleaseHeld()                { g.record("release-held") }
func (g *fakeGate) Strategy() listener.Strategy { return g.strategy }

// TestGateTransitions adds and removes handshake toxics through the API and
// checks what the proxy asks of its (fake) listener, with each strategy.
func TestGateTransitions(t *testing.T) {
	for _, strategy := range []listener.Strategy{listener.Replay, listener.Retransmit} {
		t.Run(strategy.String(), func(t *testing.T) {
			var g *fakeGate
			var cfgs []gateConfig
			old := openGate
			openGate = func(network, address string, cfg gateConfig) (gate, error) {
				ln, err := net.Listen(network, address)
				if err != nil {
					return nil, err
				}
				g = &fakeGate{Listener: ln, strategy: strategy}
				cfgs = append(cfgs, cfg)
				return g, nil
			}
			defer func() { openGate = old }()
			e := newEnv(t, listener.Auto)
			e.srv.support = support{strategy: strategy}
			if strategy == listener.Retransmit {
				e.srv.support.perConn = fmt.Errorf("needs CAP_NET_RAW")
			}
			step := func(method, path, body string, code int, want string) {
				t.Helper()
				if c, _, b := e.do(t, method, path, body); c != code {
					t.Fatalf("%s %s %s: %d %s", method, path, body, c, b)
				}
				if got := g.took(); got != want {
					t.Fatalf("%s %s %s: the listener was asked %q, want %q", method, path, body, got, want)
				}
			}
			if c, _, b := e.do(t, "POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`); c != 201 {
				t.Fatalf("create: %d %s", c, b)
			}
			if got := g.took(); got != "release" {
				t.Fatalf("a new proxy without handshake toxics: listener asked %q, want release", got)
			}
			if (cfgs[0].decide != nil) != (strategy == listener.Replay) {
				t.Fatalf("strategy %v: decide set %v", strategy, cfgs[0].decide != nil)
			}
			step("POST", "/proxies/p/toxics", `{"type":"latency"}`, 200, "")
			step("POST", "/proxies/p/toxics", `{"name":"h","type":"handshake_hold"}`, 200, "hold")
			says := map[listener.Strategy]string{listener.Replay: `"released_handshakes_complete":"now"`,
				listener.Retransmit: `"released_handshakes_complete":"at each client's next SYN retransmission"`}[strategy]
			if len(e.log.lines(`"msg":"toxic added"`, `"type":"handshake_hold"`, says)) != 1 {
				t.Errorf("the hold's log line does not say %s:\n%s", says, e.log)
			}
			if strategy == listener.Replay {
				step("POST", "/proxies/p/toxics", `{"name":"d","type":"handshake_delay","attributes":{"delay":100}}`, 200, "")
				step("DELETE", "/proxies/p/toxics/h", "", 204, "release-held")
				step("POST", "/proxies/p/toxics/d", `{"attributes":{"delay":200}}`, 200, "")
				if v := cfgs[0].decide(time.Unix(0, 0)); v.at != time.Unix(0, 0).Add(200*time.Millisecond) {
					t.Fatalf("after the update decide = %+v", v)
				}
				step("DELETE", "/proxies/p/toxics/d", "", 204, "release")
			} else {
				step("POST", "/proxies/p/toxics", `{"name":"d","type":"handshake_delay","attributes":{"delay":100}}`, 501, "")
				step("POST", "/proxies/p/toxics", `{"name":"h2","type":"handshake_hold","toxicity":0.5}`, 501, "")
				step("POST", "/proxies/p/toxics/h", `{"toxicity":0.5}`, 501, "")
				step("DELETE", "/proxies/p/toxics/h", "", 204, "release")
			}
			step("POST", "/proxies/p/toxics", `{"name":"h","type":"handshake_hold"}`, 200, "hold")
			step("POST", "/proxies/p", `{"enabled":false}`, 200, "")
			step("POST", "/proxies/p", `{"enabled":true}`, 200, "") // a new gate holds from the start
			step("POST", "/reset", "", 204, "release")
		})
	}
}

// TestHoldFailure: a listener that cannot hold again is logged, and the API
// still answers.
func TestHoldFailure(t *testing.T) {
	old := openGate
	openGate = func(network, address string, cfg gateConfig) (gate, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		return &fakeGate{Listener: ln, strategy: listener.Replay, holdErr: fmt.Errorf("filter: %w", net.ErrClosed)}, nil
	}
	defer func() { openGate = old }()
	e := newEnv(t, listener.Auto)
	e.srv.support = support{strategy: listener.Replay}
	e.do(t, "POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`)
	c, _, b := e.do(t, "POST", "/proxies/p/toxics", `{"type":"handshake_hold"}`)
	if c != 500 || !strings.Contains(b, "cannot hold handshakes: filter") {
		t.Fatalf("a hold the listener refused: %d %s", c, b)
	}
	if len(e.log.lines("cannot hold handshakes", `"level":"ERROR"`)) != 1 {
		t.Fatalf("the failed hold was not logged:\n%s", e.log)
	}
	if c, _, b := e.do(t, "GET", "/proxies/p/toxics", ""); c != 200 || b != "[]" {
		t.Fatalf("the refused toxic stayed: %d %s", c, b)
	}
}

func TestListenAddress(t *testing.T) {
	for _, tt := range []struct{ in, network, address string }{
		{"127.0.0.1:0", "tcp", "127.0.0.1:0"},
		{"[::1]:8080", "tcp", "[::1]:8080"},
		{"localhost:26379", "tcp", "localhost:26379"},
		{":8080", "tcp", "[::]:8080"}, // every address, both families, as net.Listen
		{"", "tcp", "[::]:0"},
	} {
		if n, a := listenAddress(tt.in); n != tt.network || a != tt.address {
			t.Errorf("listenAddress(%q) = %q, %q; want %q, %q", tt.in, n, a, tt.network, tt.address)
		}
	}
}
