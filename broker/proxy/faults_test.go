package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// TestUnreachableUpstream: toxiproxy creates the proxy (201) and closes
// each client whose upstream cannot be reached; the log says why.
func TestUnreachableUpstream(t *testing.T) {
	e := newEnv(t, listener.Auto)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p, err := e.client.CreateProxy("dead", "127.0.0.1:0", dead)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Listen)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a proxy whose upstream is down", n)
	}
	testenv.WaitFor(t, 5*time.Second, "the log line", func() bool {
		return len(e.log.lines("upstream unreachable", dead, "connection refused")) == 1
	})
}

// TestOpenGateFails: a listener that cannot open is a 500 with its error,
// and the server keeps serving.
func TestOpenGateFails(t *testing.T) {
	old := openGate
	openGate = func(network, address string, cfg gateConfig) (gate, error) {
		return nil, os.NewSyscallError("socket", syscall.EMFILE)
	}
	defer func() { openGate = old }()
	e := newEnv(t, listener.Auto)
	code, _, body := e.do(t, "POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`)
	if code != 500 || body != `{"error":"socket: too many open files","status":500}`+"\n" {
		t.Fatalf("%d %q", code, body)
	}
	if code, _, body := e.do(t, "GET", "/proxies", ""); code != 200 || body != "{}" {
		t.Fatalf("after the failure: %d %q", code, body)
	}
}

// TestDialFails: an upstream dial error closes the client, logged.
func TestDialFails(t *testing.T) {
	old := dialUpstream
	dialUpstream = func(ctx context.Context, address string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
	}
	defer func() { dialUpstream = old }()
	e := newEnv(t, listener.Auto)
	p, err := e.client.CreateProxy("p", "127.0.0.1:0", "192.0.2.1:80")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Listen)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client: %v, want EOF or reset", err)
	}
	testenv.WaitFor(t, 5*time.Second, "the log line", func() bool {
		return len(e.log.lines("upstream unreachable", "network is unreachable")) == 1
	})
}

// flakyGate fails its first Accept calls as an exhausted process would.
type flakyGate struct {
	fakeGate
	fails atomic.Int32
}

func (g *flakyGate) Accept() (net.Conn, error) {
	if g.fails.Add(-1) >= 0 {
		return nil, os.NewSyscallError("accept4", syscall.EMFILE)
	}
	return g.fakeGate.Accept()
}

// TestAcceptFails: accept errors are logged and retried; the proxy then
// forwards.
func TestAcceptFails(t *testing.T) {
	old := openGate
	openGate = func(network, address string, cfg gateConfig) (gate, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		g := &flakyGate{fakeGate: fakeGate{Listener: ln}}
		g.fails.Store(3)
		return g, nil
	}
	defer func() { openGate = old }()
	e := newEnv(t, listener.Auto)
	p, err := e.client.CreateProxy("p", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Listen), "after the failures")
	if got := len(e.log.lines("accept failed", "too many open files")); got != 3 {
		t.Fatalf("%d accept failures logged, want 3", got)
	}
	if !strings.Contains(e.log.String(), `"retry_in_ms"`) {
		t.Fatal("the retry is not logged")
	}
}

// TestResolveFails: a listen address the resolver cannot resolve is a 500
// with net.Listen's words on create, the resolver's own on update and
// populate (toxiproxy's Proxy.Differs), and the server keeps serving.
func TestResolveFails(t *testing.T) {
	old := resolveTCP
	resolveTCP = func(address string) (*net.TCPAddr, error) {
		if strings.HasPrefix(address, "db.example:") {
			return nil, &net.DNSError{Err: "no such host", Name: "db.example", IsNotFound: true}
		}
		return old(address)
	}
	defer func() { resolveTCP = old }()
	e := newEnv(t, listener.Auto)
	const notFound = "lookup db.example: no such host"
	for _, tt := range []struct{ method, path, body, want string }{
		{"POST", "/proxies", `{"name":"p","listen":"db.example:5432","upstream":"127.0.0.1:1"}`,
			`{"error":"listen tcp: ` + notFound + `","status":500}` + "\n"},
		{"POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`, ""},
		{"PATCH", "/proxies/p", `{"listen":"db.example:5432"}`, `{"error":"` + notFound + `","status":500}` + "\n"},
		{"POST", "/populate", `[{"name":"p","listen":"db.example:5432","upstream":"127.0.0.1:1"}]`,
			`{"error":"` + notFound + `","status":500,"proxies":null}`},
	} {
		code, _, body := e.do(t, tt.method, tt.path, tt.body)
		if tt.want == "" {
			if code != 201 {
				t.Fatalf("%s %s: %d %s", tt.method, tt.path, code, body)
			}
			continue
		}
		if code != 500 || body != tt.want {
			t.Errorf("%s %s %s: %d %q, want 500 %q", tt.method, tt.path, tt.body, code, body, tt.want)
		}
	}
	if code, _, body := e.do(t, "GET", "/proxies/p", ""); code != 200 || !strings.Contains(body, `"enabled":true`) {
		t.Fatalf("after the failures: %d %q", code, body)
	}
}
