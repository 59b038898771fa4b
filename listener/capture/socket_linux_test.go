package capture

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// openOrSkip opens a capture socket on every interface, or skips the test
// when the process lacks CAP_NET_RAW.
func openOrSkip(t *testing.T, cfg Config) *Socket {
	t.Helper()
	s, err := Open(cfg)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("capture needs CAP_NET_RAW: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSocketSeesOneSYNAndOneSYNACK(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			s := openOrSkip(t, Config{})
			ln, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.network, err)
			}
			defer ln.Close()
			lport := ln.Addr().(*net.TCPAddr).AddrPort().Port()
			before := time.Now()
			c, err := net.Dial(tc.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cport := c.LocalAddr().(*net.TCPAddr).AddrPort().Port()

			var syns, synacks int
			s.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				if syns == 1 && synacks == 1 {
					// Both seen: a short extra window catches duplicates.
					s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				}
				p, err := s.ReadPacket()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case p.IsSYN() && p.Dst.Port() == lport && p.Src.Port() == cport:
					syns++
					if p.Outgoing {
						t.Errorf("SYN copy marked outgoing: %+v", p)
					}
					if d := p.Time.Sub(before); d < 0 || d > time.Second {
						t.Errorf("SYN kernel time %v is %v from the dial", p.Time, d)
					}
				case p.IsSYNACK() && p.Src.Port() == lport && p.Dst.Port() == cport:
					synacks++
					if !p.Outgoing {
						t.Errorf("SYN-ACK copy not marked outgoing: %+v", p)
					}
				}
			}
			if syns != 1 || synacks != 1 {
				t.Errorf("saw %d SYNs and %d SYN-ACKs, want 1 and 1", syns, synacks)
			}
		})
	}
}

func TestCloseWakesReader(t *testing.T) {
	s := openOrSkip(t, Config{Ifindex: 1})
	done := make(chan error, 1)
	go func() {
		for { // other loopback traffic may come first
			if _, err := s.ReadPacket(); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("ReadPacket after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake ReadPacket")
	}
}

func TestOpenMissingInterface(t *testing.T) {
	_, err := Open(Config{Ifindex: 1 << 30})
	if errors.Is(err, os.ErrPermission) {
		t.Skip("capture needs CAP_NET_RAW")
	}
	if err == nil {
		t.Fatal("Open on a missing interface succeeded")
	}
	t.Logf("error: %v", err)
}
