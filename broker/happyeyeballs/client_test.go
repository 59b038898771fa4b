package happyeyeballs

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cannedServer answers each control connection with reply, and reports the
// byte it read on got.
func cannedServer(t *testing.T, reply []byte) (addr string, got <-chan byte) {
	t.Helper()
	ln := mustListen(t, "tcp4", "127.0.0.1:0")
	t.Cleanup(func() { ln.Close() })
	ch := make(chan byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var b [1]byte
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(b[:]); err == nil {
				ch <- b[0]
				c.Write(reply)
			}
			c.Close()
		}
	}()
	return ln.Addr().String(), ch
}

func TestClientReplies(t *testing.T) {
	lo4 := netip.MustParseAddr("127.0.0.1")
	lo6 := netip.IPv6Loopback()
	for _, tc := range []struct {
		name     string
		samePort bool
		slow     int
		reply    []byte
		wantByte byte
		want     Pair
		wantErr  string // substring; "" means success
		refused  bool   // errors.Is(err, ErrRefused)
	}{
		{name: "two ports", slow: 4, reply: []byte{1, 0x12, 0x34, 0x56, 0x78}, wantByte: 0x04,
			want: Pair{IPv4: netip.AddrPortFrom(lo4, 0x1234), IPv6: netip.AddrPortFrom(lo6, 0x5678), Slow: 4}},
		{name: "ipv6 slow", slow: 6, reply: []byte{1, 0, 80, 0, 81}, wantByte: 0x06,
			want: Pair{IPv4: netip.AddrPortFrom(lo4, 80), IPv6: netip.AddrPortFrom(lo6, 81), Slow: 6}},
		{name: "same port", samePort: true, slow: 6, reply: []byte{1, 0x12, 0x34}, wantByte: 0x16,
			want: Pair{IPv4: netip.AddrPortFrom(lo4, 0x1234), IPv6: netip.AddrPortFrom(lo6, 0x1234), Slow: 6}},
		{name: "refused", slow: 4, reply: []byte{0}, wantByte: 0x04, wantErr: "no pair for 0x04", refused: true},
		{name: "short", slow: 4, reply: []byte{1, 0x12, 0x34}, wantByte: 0x04, wantErr: "read ports: 2 of 4 bytes"},
		{name: "nothing", slow: 4, reply: nil, wantByte: 0x04, wantErr: "read reply: EOF"},
		{name: "not the protocol", slow: 4, reply: []byte("HTTP/1.1"), wantByte: 0x04, wantErr: "reply 0x48, want 0x01"},
		{name: "port zero", slow: 4, reply: []byte{1, 0, 0, 0, 9}, wantByte: 0x04, wantErr: "names port 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := cannedServer(t, tc.reply)
			c := &Client{Addr: addr, SamePort: tc.samePort}
			p, err := c.Pair(context.Background(), tc.slow)
			if b := <-got; b != tc.wantByte {
				t.Errorf("server read 0x%02x, want 0x%02x", b, tc.wantByte)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Pair: %v", err)
			case tc.wantErr == "" && p != tc.want:
				t.Fatalf("Pair = %+v, want %+v", p, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Pair = %+v, %v; want an error containing %q", p, err, tc.wantErr)
			case tc.wantErr != "" && errors.Is(err, ErrRefused) != tc.refused:
				t.Fatalf("errors.Is(%v, ErrRefused) = %v, want %v", err, !tc.refused, tc.refused)
			}
		})
	}
}

func TestClientPingReplies(t *testing.T) {
	for _, tc := range []struct {
		reply   []byte
		wantErr error
	}{
		{reply: []byte{1}},
		{reply: []byte{0}, wantErr: ErrRefused},
		{reply: nil, wantErr: errors.New("read reply: EOF")},
	} {
		addr, got := cannedServer(t, tc.reply)
		c := &Client{Addr: addr}
		err := c.Ping(context.Background())
		if b := <-got; b != 0xF0 {
			t.Errorf("ping sent 0x%02x, want 0xf0", b)
		}
		switch {
		case tc.wantErr == nil && err != nil:
			t.Errorf("reply % x: Ping: %v", tc.reply, err)
		case tc.wantErr == ErrRefused && !errors.Is(err, ErrRefused):
			t.Errorf("reply % x: Ping: %v, want ErrRefused", tc.reply, err)
		case tc.wantErr != nil && (err == nil || !strings.Contains(err.Error(), tc.wantErr.Error())):
			t.Errorf("reply % x: Ping: %v, want %v", tc.reply, err, tc.wantErr)
		}
	}
}

func TestClientBadFamily(t *testing.T) {
	for _, slow := range []int{0, 5, 46} {
		if _, err := (&Client{Addr: "127.0.0.1:1"}).Pair(context.Background(), slow); err == nil || !strings.Contains(err.Error(), "want 4 or 6") {
			t.Errorf("Pair(%d): %v, want an error naming 4 or 6", slow, err)
		}
	}
}

// refusedAddr is a loopback address that refuses connections until the
// test ends: the local end of a connection the test keeps open, so that no
// other test (of this process or another's) can listen on it, hold its
// SYNs or answer them meanwhile, as it could on a port merely closed.
func refusedAddr(t *testing.T) string {
	ln := mustListen(t, "tcp4", "127.0.0.1:0")
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

func TestClientNoServer(t *testing.T) {
	c := &Client{Addr: refusedAddr(t)}
	ctx := context.Background()
	for name, err := range map[string]error{
		"Pair": func() error { _, err := c.Pair(ctx, 4); return err }(),
		"Ping": c.Ping(ctx),
		"Stop": c.Stop(ctx, 10*time.Millisecond),
	} {
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "no server on "+c.Addr) {
			t.Errorf("%s with no server: %v, want ECONNREFUSED naming %s", name, err, c.Addr)
		}
	}
	// Long enough for a loaded machine to run one refused dial (200 ms
	// was not, under -race beside other builds); Wait still ends at it.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Wait(wctx, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Wait with no server: %v, want the deadline and the last refusal", err)
	}
}

// TestClientCancel checks that cancelling the context cuts short an
// exchange with a server that never answers.
func TestClientCancel(t *testing.T) {
	ln := mustListen(t, "tcp4", "127.0.0.1:0")
	defer ln.Close()
	read := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		var b [1]byte
		c.Read(b[:])
		read <- c // holds the connection open, silent
	}()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := (&Client{Addr: ln.Addr().String(), Timeout: time.Minute}).Pair(ctx, 4)
		errc <- err
	}()
	c := <-read // the request byte arrived: the client now waits for the reply
	defer c.Close()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Pair after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pair did not return after its context was cancelled")
	}
}

// TestClientAgainstServer drives a real server through the client: pairs
// of both kinds (the fast family wins and reads its byte), a ping, a stop.
func TestClientAgainstServer(t *testing.T) {
	hs := startServer(t, Config{FastDelay: 100 * time.Millisecond, SlowDelay: 2 * time.Second})
	c := &Client{Addr: hs.ctl4}
	ctx := context.Background()
	if err := c.Wait(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	for _, tc := range []struct {
		slow     int
		samePort bool
	}{{4, false}, {6, false}, {4, true}} {
		c := &Client{Addr: hs.ctl6, SamePort: tc.samePort}
		p, err := c.Pair(ctx, tc.slow)
		if err != nil {
			t.Fatalf("Pair(%d): %v", tc.slow, err)
		}
		if p.Slow != tc.slow || p.Fast() != 10-tc.slow || tc.samePort != (p.IPv4.Port() == p.IPv6.Port()) {
			t.Fatalf("Pair(%d, same port %v) = %+v", tc.slow, tc.samePort, p)
		}
		conn, err := net.DialTimeout("tcp", p.Addr(p.Fast()).String(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial the fast side %v: %v", p.Addr(p.Fast()), err)
		}
		if b := readByte(t, conn); b != FamilyByte(p.Fast()) {
			t.Errorf("fast side read 0x%02x, want 0x%02x", b, FamilyByte(p.Fast()))
		}
		conn.Close()
	}
	if err := c.Stop(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-hs.Done():
	default:
		t.Fatal("Stop returned before the server stopped")
	}
	if err := c.Ping(ctx); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Ping after Stop: %v, want ECONNREFUSED", err)
	}
}

// FuzzPairReply feeds readPairReply every reply a server could send.
func FuzzPairReply(f *testing.F) {
	f.Add(byte(0x04), []byte{1, 0x12, 0x34, 0x56, 0x78})
	f.Add(byte(0x16), []byte{1, 0x12, 0x34})
	f.Add(byte(0x06), []byte{0})
	f.Add(byte(0x14), []byte{1, 0})
	f.Fuzz(func(t *testing.T, b byte, reply []byte) {
		req, err := parseRequest(b)
		if err != nil || req.Op != opPair {
			return
		}
		p, err := readPairReply(bytes.NewReader(reply), req)
		if err != nil {
			if p != (Pair{}) {
				t.Errorf("error %v with pair %+v", err, p)
			}
			return
		}
		n := 5
		if req.SamePort {
			n = 3
		}
		if len(reply) < n || reply[0] != replyOK {
			t.Fatalf("reply % x accepted as %+v", reply, p)
		}
		want := encodeReply(req, p.IPv4.Port(), p.IPv6.Port())
		if !bytes.Equal(want, reply[:n]) || p.Slow != req.Slow || !p.IPv4.Addr().Is4() || !p.IPv6.Addr().Is6() {
			t.Errorf("reply % x decoded as %+v (encodes back as % x)", reply, p, want)
		}
	})
}
