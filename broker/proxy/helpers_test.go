package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/logtest"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct{ logtest.Buffer }

// lines returns the log lines that contain every one of subs.
func (s *syncBuffer) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		ok := l != ""
		for _, sub := range subs {
			ok = ok && strings.Contains(l, sub)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// env is a Server behind an HTTP API on loopback, and toxiproxy's Go client
// for it.
type env struct {
	srv    *Server
	api    *httptest.Server
	client *toxiclient.Client
	log    *syncBuffer
}

func newEnv(t *testing.T, strategy listener.Strategy) *env {
	t.Helper()
	return newEnvConfig(t, Config{Strategy: strategy})
}

// newEnvConfig is newEnv with a Config of its own (a debug JSON logger and
// seed 1 filled in).
func newEnvConfig(t *testing.T, cfg Config) *env {
	t.Helper()
	logs := new(syncBuffer)
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Seed = 1
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(s)
	t.Cleanup(func() {
		api.Close()
		s.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &env{srv: s, api: api, client: toxiclient.NewClient(api.Listener.Addr().String()), log: logs}
}

// do sends one raw request to the API.
func (e *env) do(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestMain removes the toxiproxy-server that the comparisons with it build
// (testenv.BuildBinary).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// echoServer is an upstream that echoes what it reads, on loopback.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip writes msg on c and reads it back, returning how long it took.
func roundTrip(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("round trip: got %q, want %q", got, msg)
	}
	return time.Since(start)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deleteOrDisable deletes p (how "delete") or disables it (how "disable"),
// the two ways a client stops a proxy with connections.
func deleteOrDisable(p *toxiclient.Proxy, how string) error {
	if how == "delete" {
		return p.Delete()
	}
	return p.Disable()
}

// skipUnlessPerConn skips t unless e's proxies decide each handshake
// (handshake_delay and handshake_refuse; strategy replay), naming what is
// missing, and fails it if they cannot with every privilege.
func skipUnlessPerConn(t *testing.T, e *env) {
	t.Helper()
	if why := e.srv.support.perConn; why != nil {
		skipWithoutReplay(t)
		t.Fatalf("handshake toxics unsupported although strategy replay works: %v", why)
	}
}

func goroutines() int { return runtime.NumGoroutine() }

// isRefused reports whether err is a refused connection.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
