package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// runNow runs the client in-process.
func runNow(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// startServer serves a real Happy Eyeballs server on 127.0.0.1 and returns
// its control port.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := happyeyeballs.NewServer(happyeyeballs.Config{
		FastDelay: 300 * time.Millisecond, SlowDelay: 1200 * time.Millisecond,
		Strategy: holdStrategy(t), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// holdStrategy returns Replay where this process can replay SYNs, else
// Retransmit if it can hold them at all; it skips the test otherwise.
func holdStrategy(t *testing.T) (s listener.Strategy) {
	t.Helper()
	s, _ = listener.Probe()
	if s == listener.Replay {
		return s
	}
	h, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: listener.Retransmit})
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW for replay, or CAP_NET_ADMIN where the kernel refuses the SYN-holding socket filter without it")
	h.Close()
	return listener.Retransmit
}

func TestClientAgainstServer(t *testing.T) {
	port := startServer(t)
	// It dials both families at once, which RFC 8305 does not allow. The
	// server can tell only if it captures SYNs (strategy replay).
	judged := "server's judgement (RFC 8305): unknown: The server could not see every SYN"
	if s, _ := listener.Probe(); s == listener.Replay {
		judged = "server's judgement (RFC 8305): deviates ["
	}
	for _, tc := range []struct {
		args []string
		fast string
	}{
		{[]string{"-d", "4"}, "IPv6"},
		{[]string{"-d", "6"}, "IPv4"},
		{[]string{"-d", "4", "--same-port"}, "IPv6"},
		{[]string{"-d", "6", "--same-port"}, "IPv4"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errs := runNow(append([]string{"-c", port}, tc.args...)...)
			if code != 0 || !strings.Contains(out, "connected over "+tc.fast) || !strings.Contains(out, "\nok\n") {
				t.Errorf("exit %d; stdout:\n%sstderr:\n%s", code, out, errs)
			}
			// Its two goroutines dial "at once", but on a loaded machine one
			// may start tens of ms after the other, and either first.
			if !strings.Contains(out, judged) || strings.Contains(judged, "deviates") && !regexp.MustCompile(`NoAttemptDelay|ShortAttemptDelay|IPv4First`).MatchString(out) {
				t.Errorf("stdout:\n%s\nwant the judgement %q", out, judged)
			}
			t.Log(out)
		})
	}
}

// fakeControl serves a control port that answers every request with what
// reply returns.
func fakeControl(t *testing.T, reply func(req byte) []byte) string {
	t.Helper()
	return strconv.Itoa(int(testenv.Serve(t, "tcp4", "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err == nil {
			c.Write(reply(b[0]))
		}
	}).Port()))
}

// byteServer accepts on network and writes b to every connection; it
// returns the port.
func byteServer(t *testing.T, network, addr string, b byte) uint16 {
	t.Helper()
	return testenv.Serve(t, network, addr, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte{b})
	}).Port()
}

// closedPort returns a port on which connecting is refused.
func closedPort(t *testing.T, network, addr string) uint16 {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	ln.Close()
	return p
}

func ports(p4, p6 uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16([]byte{1}, p4), p6)
}

func TestClientDetectsFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(t *testing.T) []byte
		want  string
	}{
		{"server error", func(*testing.T) []byte { return []byte{0} }, "answered 0x00"},
		{"short reply", func(*testing.T) []byte { return []byte{1, 2} }, "read ports"},
		{"slow family wins", func(t *testing.T) []byte {
			return ports(byteServer(t, "tcp4", "127.0.0.1:0", 0x04), closedPort(t, "tcp6", "[::1]:0"))
		}, "the slow family won"},
		{"wrong byte", func(t *testing.T) []byte {
			return ports(closedPort(t, "tcp4", "127.0.0.1:0"), byteServer(t, "tcp6", "[::1]:0", 0x04))
		}, "byte did not match"},
		{"nobody answers", func(t *testing.T) []byte {
			return ports(closedPort(t, "tcp4", "127.0.0.1:0"), closedPort(t, "tcp6", "[::1]:0"))
		}, "neither family connected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := tc.reply(t)
			port := fakeControl(t, func(byte) []byte { return reply })
			code, out, errs := runNow("-c", port, "-d", "4")
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q (stdout %q)", code, errs, tc.want, out)
			}
		})
	}
}

func TestClientUsage(t *testing.T) {
	for _, args := range [][]string{{"-d", "5"}, {"-c", "0"}, {"stray"}, {"--bogus"}} {
		if code, _, errs := runNow(args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}
