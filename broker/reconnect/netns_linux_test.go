package reconnect

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/synhold/synhold/backoff"
	"github.com/synhold/synhold/internal/netnstest"
	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// TestForeignSource runs the server in a namespace of its own, on
// its loopback and its veth address, the client under test on that
// loopback, and another host, across the veth pair, that connects to the
// retry port during the test: its attempts are left out of the verdict and
// reported.
func TestForeignSource(t *testing.T) {
	testenv.SkipIfShort(t, "grpc-go retrying for 8 s beside another host's connections")
	t.Parallel()
	pair := netnstest.New(t)
	server, other := pair.Server, pair.Client
	cfg := Config{
		listen: func(network, address string, c listener.Config) (h *listener.Held, err error) {
			err = server.Do(func() error {
				h, err = listener.Listen(network, address, c)
				return err
			})
			return h, err
		},
	}
	h := startServer(t, cfg, func(network, address string) (ln net.Listener, err error) {
		err = server.Do(func() error {
			ln, err = net.Listen(network, address)
			return err
		})
		return ln, err
	})
	port := h.srv.RetryPort()

	foreign := make(chan []netip.AddrPort, 1)
	go func() {
		var srcs []netip.AddrPort
		targets := []netip.Addr{server.Addr4, server.Addr6, server.Addr4}
		for _, dst := range targets {
			time.Sleep(1700 * time.Millisecond)
			err := other.Do(func() error {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(dst.String(), strconv.Itoa(port)), 2*time.Second)
				if err != nil {
					return err
				}
				srcs = append(srcs, addrPortOf(c.LocalAddr()))
				return c.Close()
			})
			if err != nil {
				t.Errorf("foreign connection to %v: %v", dst, err)
			}
		}
		foreign <- srcs
	}()

	c := Client{
		Control: h.ctl, Retry: h.retry(), MaxBackoffMs: 3000, Deadline: 8 * time.Second,
		Backoff: testPolicy(1.6, 0.2, 3*time.Second),
		Dialer: func(ctx context.Context, addr string) (conn net.Conn, err error) {
			err = server.Do(func() error {
				conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				return err
			})
			return conn, err
		},
	}
	run, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srcs := <-foreign
	t.Logf("%s", h.report.Bytes())
	res := h.srv.Results()[0]
	if !run.RetryOK() || !run.Info.GetPassed() {
		t.Fatalf("retry %v, passed %t: want DeadlineExceeded and passed despite the other host", run.Retry.Err(), run.Info.GetPassed())
	}
	if !res.Client.Addr().IsLoopback() {
		t.Fatalf("client under test %v, want loopback", res.Client)
	}
	got := map[netip.AddrPort]bool{}
	for _, rm := range res.Foreign() {
		got[rm.Attempt.Src] = true
	}
	if len(got) != len(srcs) {
		t.Fatalf("foreign attempts reported from %v, want %v", got, srcs)
	}
	for _, s := range srcs {
		if !got[s] {
			t.Errorf("foreign attempt from %v not reported (reported %v)", s, got)
		}
	}
	if n := len(h.records(t, "reconnect: attempt from a host other than the client under test; left out of the verdict")); n != len(srcs) {
		t.Errorf("%d error lines for %d foreign attempts", n, len(srcs))
	}
	// The reference server, counting every connection, would fail it.
	all := res.Analysis
	var attempts []backoff.Attempt
	for _, s := range all.Series {
		attempts = append(attempts, s.Attempts...)
	}
	for _, rm := range all.Removed {
		attempts = append(attempts, rm.Attempt)
	}
	ref := backoff.Analyze(attempts, all.Policy, backoff.Options{})
	t.Logf("%d foreign attempts left out; counting them, as the reference server does: %s", len(srcs), passFail(ref.MergedReferencePassed))
}
