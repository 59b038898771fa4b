package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/listener"
)

// TestDataToxics runs each of toxiproxy's toxics through a proxy, each
// checked by what a client sees.
func TestDataToxics(t *testing.T) {
	e := newEnv(t, listener.Auto)
	up := echoServer(t)
	payload := bytes.Repeat([]byte("0123456789"), 5000) // 50 kB
	tests := []struct {
		typ    string
		stream string
		attrs  toxiclient.Attributes
		check  func(t *testing.T, c net.Conn)
	}{
		{"noop", "downstream", nil, func(t *testing.T, c net.Conn) { roundTrip(t, c, "noop") }},
		{"latency", "upstream", toxiclient.Attributes{"latency": 200}, func(t *testing.T, c net.Conn) {
			if d := roundTrip(t, c, "late"); d < 200*time.Millisecond {
				t.Errorf("round trip %v with 200 ms latency upstream", d)
			}
		}},
		{"bandwidth", "downstream", toxiclient.Attributes{"rate": 100}, func(t *testing.T, c net.Conn) {
			// 50 kB at 100 kB/s: at least 0.4 s.
			start := time.Now()
			go c.Write(payload)
			got := make([]byte, len(payload))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("bandwidth: read %v", err)
			}
			if d := time.Since(start); d < 400*time.Millisecond {
				t.Errorf("50 kB at 100 kB/s took %v", d)
			}
		}},
		{"slicer", "downstream", toxiclient.Attributes{"average_size": 100, "size_variation": 50, "delay": 500}, func(t *testing.T, c net.Conn) {
			go c.Write(payload)
			got := make([]byte, len(payload))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			reads := 0
			for n := 0; n < len(got); reads++ {
				m, err := c.Read(got[n:])
				if err != nil {
					t.Fatalf("slicer: read after %d bytes: %v", n, err)
				}
				n += m
			}
			if !bytes.Equal(got, payload) || reads < 10 {
				t.Errorf("slicer: %d reads for %d bytes, intact %v", reads, len(got), bytes.Equal(got, payload))
			}
		}},
		{"limit_data", "downstream", toxiclient.Attributes{"bytes": 10}, func(t *testing.T, c net.Conn) {
			c.Write([]byte("0123456789abcdef"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if string(got) != "0123456789" {
				t.Errorf("limit_data 10: read %q (%v)", got, err)
			}
		}},
		{"timeout", "upstream", toxiclient.Attributes{"timeout": 200}, func(t *testing.T, c net.Conn) {
			start := time.Now()
			c.Write([]byte("dropped"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if d := time.Since(start); len(got) != 0 || err != nil || d < 200*time.Millisecond {
				t.Errorf("timeout 200: read %q, err %v, closed after %v", got, err, d)
			}
		}},
		{"slow_close", "downstream", toxiclient.Attributes{"delay": 300}, func(t *testing.T, c net.Conn) {
			roundTrip(t, c, "x")
			start := time.Now()
			c.(*net.TCPConn).CloseWrite() // the echo server then closes
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.ReadAll(c)
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Errorf("slow_close 300: closed after %v", d)
			}
		}},
		{"reset_peer", "downstream", toxiclient.Attributes{"timeout": 0}, func(t *testing.T, c net.Conn) {
			c.Write([]byte("reset me"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.ReadAll(c)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("reset_peer: read err %v, want connection reset", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			p, err := e.client.CreateProxy(tt.typ, "127.0.0.1:0", up)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Delete()
			if _, err := p.AddToxic("", tt.typ, tt.stream, 1, tt.attrs); err != nil {
				t.Fatal(err)
			}
			tt.check(t, dial(t, p.Listen))
		})
	}
}

// TestToxicity0 never applies a toxic with toxicity 0.
func TestToxicity0(t *testing.T) {
	e := newEnv(t, listener.Auto)
	p, err := e.client.CreateProxy("p", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("", "limit_data", "downstream", 0, toxiclient.Attributes{"bytes": 1}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		roundTrip(t, dial(t, p.Listen), "whole")
	}
}
