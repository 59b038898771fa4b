package proxy

import (
	"net"
	"sync"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// sink is an upstream that accepts connections and keeps them, with no
// goroutine per connection, so that the proxy's goroutines can be counted.
type sink struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newSink(t *testing.T) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *sink) close() {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
}

// TestNoLeak opens 1000 connections through a proxy with a toxic, then
// deletes or disables it: every client is closed, and the process is back
// to its descriptors and goroutines.
func TestNoLeak(t *testing.T) {
	testenv.SkipIfShort(t, "three runs of 1000 connections opened, then closed by the proxy: 4 s")
	const n = 1000
	for _, tc := range []struct {
		how       string
		handshake bool // a handshake_delay on the proxy: every SYN held and replayed
	}{{"delete", false}, {"disable", false}, {"delete", true}} {
		how := tc.how
		name := how
		if tc.handshake {
			name += " with handshake_delay"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, listener.Auto)
			up := newSink(t)
			defer up.close()
			// Let the API's keep-alive connection and its goroutines exist
			// before the baseline.
			if _, err := e.client.Proxies(); err != nil {
				t.Fatal(err)
			}
			fds0, g0 := testenv.OpenFDs(t), goroutines()

			p, err := e.client.CreateProxy("many", "127.0.0.1:0", up.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.AddToxic("", "latency", "downstream", 1, toxiclient.Attributes{"latency": 10}); err != nil {
				t.Fatal(err)
			}
			if tc.handshake {
				skipUnlessPerConn(t, e)
				if _, err := p.AddToxic("", "handshake_delay", "", 1, toxiclient.Attributes{"delay": 1}); err != nil {
					t.Fatal(err)
				}
			}
			clients := make([]net.Conn, 0, n)
			for range n {
				c, err := net.DialTimeout("tcp", p.Listen, 10*time.Second)
				if err != nil {
					t.Fatalf("connection %d: %v", len(clients), err)
				}
				clients = append(clients, c)
			}
			testenv.WaitFor(t, 30*time.Second, "the upstream to see every connection", func() bool { return up.count() == n })

			if err := deleteOrDisable(p, how); err != nil {
				t.Fatal(err)
			}
			for i, c := range clients {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Fatalf("client %d still open after %s", i, how)
				}
				c.Close()
			}
			up.mu.Lock()
			for _, c := range up.conns {
				c.Close()
			}
			up.conns = nil
			up.mu.Unlock()
			if how == "disable" {
				if _, err := net.DialTimeout("tcp", p.Listen, 2*time.Second); !isRefused(err) {
					t.Fatalf("disabled: dial err %v, want refused", err)
				}
			}
			testenv.WaitFor(t, 20*time.Second, "descriptors and goroutines to return", backTo(t, fds0, g0))
			if !e.srv.idle() {
				t.Error("the server still tracks connections")
			}
		})
	}
}

// idle reports whether no proxy of s has a connection open.
func (s *Server) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.proxies {
		if r := f.run; r != nil {
			r.mu.Lock()
			n := len(r.pairs)
			r.mu.Unlock()
			if n > 0 {
				return false
			}
		}
	}
	return true
}
