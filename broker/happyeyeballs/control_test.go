package happyeyeballs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

func TestUnknownBytes(t *testing.T) {
	// No pair is asked for: delayed-listen, which needs no privilege, will do.
	hs := startServer(t, Config{Strategy: listener.DelayedListen})
	for _, b := range []byte{0x00, 0x01, 0x05, 0x07, 0x15, 0x24, 0x41, 0xEF, 0xF1, 0xFE} {
		t.Run(hexByte(b), func(t *testing.T) {
			if a := ask(t, hs.ctl4, b); !bytes.Equal(a.reply, []byte{replyFailure}) {
				t.Errorf("reply % x, want 00", a.reply)
			}
			if a := ask(t, hs.ctl6, reqPing); !bytes.Equal(a.reply, []byte{replyOK}) {
				t.Errorf("ping after 0x%02x: reply % x, want 01: the server stopped serving", b, a.reply)
			}
		})
	}
	if n := len(hs.log.records("unknown control request; replied 0x00")); n != 10 {
		t.Errorf("%d log lines for unknown requests, want one each (10)", n)
	}
}

func TestIdleControlConnections(t *testing.T) {
	const idle = 300 * time.Millisecond
	hs := startServer(t, Config{IdleTimeout: idle, Strategy: listener.DelayedListen})
	for _, tc := range []struct {
		name  string
		addr  string
		idles int
	}{
		{"ipv4/one", hs.ctl4, 1},
		{"ipv6/five", hs.ctl6, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			closed := make(chan time.Duration, tc.idles)
			for range tc.idles {
				c, err := net.Dial("tcp", tc.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				go func() {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := io.Copy(io.Discard, c)
					if err != nil || n != 0 {
						t.Errorf("idle connection: read %d bytes, %v; want a clean close", n, err)
					}
					closed <- time.Since(start)
				}()
			}
			a := ask(t, tc.addr, reqPing)
			if took := a.replied.Sub(a.sent); !bytes.Equal(a.reply, []byte{replyOK}) || took > idle/2 {
				t.Errorf("ping beside idle connections: reply % x after %v, want 01 well within %v", a.reply, took, idle)
			}
			for range tc.idles {
				// Up to a second late: a loaded 2-core machine running -race
				// stalled these 900 ms; still well before the 5 s of the
				// read deadline, which a server that never closes would hit.
				if d := <-closed; d < idle-20*time.Millisecond || d > idle+time.Second {
					t.Errorf("idle connection closed after %v, want %v to a second later", d, idle)
				}
			}
		})
	}
}

func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, hs *testServer)
	}{
		{"0xff", func(t *testing.T, hs *testServer) {
			if a := ask(t, hs.ctl6, reqShutdown); !bytes.Equal(a.reply, []byte{replyOK}) {
				t.Errorf("0xff: reply % x, want 01", a.reply)
			}
		}},
		{"Shutdown", func(t *testing.T, hs *testServer) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hs.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := startServer(t, Config{FastDelay: time.Hour, SlowDelay: 2 * time.Hour})
			p := hs.pair(t, 0x04)
			select {
			case <-hs.Done():
				t.Fatal("Done closed before the server was stopped")
			default:
			}
			tc.stop(t, hs)
			select {
			case <-hs.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done not closed")
			}
			for _, addr := range []string{hs.ctl4, hs.ctl6, p.addr4, p.addr6} {
				waitRefused(t, addr)
			}
		})
	}
}

// settle waits until the descriptors and goroutines are back to at most
// fds and gs, and reports what it last saw.
func settle(t *testing.T, fds, gs int, within time.Duration) (int, int) {
	t.Helper()
	var f, g int
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		f, g = testenv.OpenFDs(t), runtime.NumGoroutine()
		if f <= fds && g <= gs || time.Now().After(deadline) {
			return f, g
		}
	}
}

func TestPairsNobodyConnectsToLeakNothing(t *testing.T) {
	testenv.SkipIfShort(t, "1000 pairs held until their 1.5 s timeout, then a wait for every descriptor back: 5-7 s")
	const (
		pairs       = 1000
		workers     = 16
		pairTimeout = 1500 * time.Millisecond
	)
	hs := startServer(t, Config{PairTimeout: pairTimeout, Logger: slog.New(slog.DiscardHandler)})
	ask(t, hs.ctl4, reqPing) // the poller and the Serve goroutines are up
	fds, gs := settle(t, testenv.OpenFDs(t), runtime.NumGoroutine(), 0)
	start := time.Now()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ports  [][]byte
		failed []error
	)
	reqs := make(chan byte)
	for range workers {
		wg.Go(func() {
			for b := range reqs {
				reply, err := tryAsk(hs.ctl4, b)
				mu.Lock()
				if err != nil || len(reply) < 3 || reply[0] != replyOK {
					failed = append(failed, fmt.Errorf("0x%02x: reply % x, %v", b, reply, err))
				} else {
					ports = append(ports, reply)
				}
				mu.Unlock()
			}
		})
	}
	for i := range pairs {
		reqs <- []byte{0x04, 0x06, 0x14, 0x16}[i%4]
	}
	close(reqs)
	wg.Wait()
	requested := time.Since(start)
	if len(failed) > 0 {
		t.Fatalf("%d of %d pair requests failed, first: %v", len(failed), pairs, failed[0])
	}
	peakFDs := testenv.OpenFDs(t)
	f, g := settle(t, fds, gs, pairTimeout+10*time.Second)
	t.Logf("%d pairs requested in %v; descriptors %d before, %d at the peak, %d after; goroutines %d before, %d after",
		pairs, requested.Round(time.Millisecond), fds, peakFDs, f, gs, g)
	if f > fds || g > gs {
		t.Errorf("leak after every pair timed out: %d descriptors (was %d), %d goroutines (was %d)", f, fds, g, gs)
	}
	if peakFDs < fds+pairs/2 {
		t.Errorf("only %d descriptors at the peak: pairs were not held open until their timeout", peakFDs)
	}
	hs.mu.Lock()
	left := len(hs.pairs)
	hs.mu.Unlock()
	if left != 0 {
		t.Errorf("%d pairs still registered", left)
	}
	p4 := int(binary.BigEndian.Uint16(ports[0][1:]))
	waitRefused(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p4)))
}

// tryAsk is ask for goroutines other than the test's: it returns
// errors instead of failing the test.
func tryAsk(addr string, b byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{b}); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

func TestPairTimeout(t *testing.T) {
	const pairTimeout = 300 * time.Millisecond
	hs := startServer(t, Config{PairTimeout: pairTimeout, FastDelay: 100 * time.Millisecond, SlowDelay: 200 * time.Millisecond})
	p := hs.pair(t, 0x06)
	time.Sleep(pairTimeout / 2)
	start := time.Now()
	c, err := net.DialTimeout("tcp4", p.addr4, time.Second)
	if err != nil {
		t.Fatalf("the pair closed before its timeout: %v", err)
	}
	c.Close() // connected: the pair closes now, and its log says why
	if took := time.Since(start); took > testTol {
		t.Errorf("a SYN after the instant took %v to complete, want at once", took)
	}
	q := hs.pair(t, 0x04)
	hs.log.waitRecords(t, "pair closed", 2) // the first pair's, then q's at its timeout
	if took := time.Since(q.replied); took < pairTimeout {
		t.Errorf("the second pair closed %v after its reply, before its timeout %v", took, pairTimeout)
	}
	waitRefused(t, q.addr4)
	waitRefused(t, q.addr6)
	var whys []any
	for _, r := range hs.log.records("pair closed") {
		whys = append(whys, r["why"])
	}
	want := []any{"connected over ipv4", "timeout: nobody connected"}
	if len(whys) != 2 || whys[0] != want[0] || whys[1] != want[1] {
		t.Errorf("pairs closed because %q, want %q", whys, want)
	}
}

// TestServeAfterShutdown checks that a listener handed to a
// stopped server is closed and Serve returns nil.
func TestServeAfterShutdown(t *testing.T) {
	s := newServer(t, Config{Logger: slog.New(slog.DiscardHandler)})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln := mustListen(t, "tcp4", "127.0.0.1:0")
	if err := s.Serve(ln); err != nil {
		t.Errorf("Serve after Shutdown: %v, want nil", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener still open after Serve returned: %v", err)
	}
}
