package testenv

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/logtest"
)

// WaitFor waits until cond returns true, checking it every 5 ms, and fails
// t (saying it waited for what) when limit passes first: a test waits on
// what it can observe (a log line, a socket's state), not for a time it
// hopes is long enough.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: waited %v for %s", limit, what)
		}
	}
}

// Serve listens on network's address addr (port 0 for any) until the test
// ends and hands each connection it accepts to handle, on a goroutine of
// its own; handle closes it. It returns the address it listens on. It is
// the peer a test needs of a command: an upstream, a fake server.
func Serve(t testing.TB, network, addr string, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// MainFunc is the form each command of this repository has its main in:
// it runs with args until ctx ends (main cancels it on SIGINT or SIGTERM),
// writes to stdout and stderr, and returns the exit status.
type MainFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run is a command's MainFunc started by [StartRun] on a goroutine of the
// test, standing in for the command in a process of its own.
type Run struct {
	// Stdout and Stderr hold what the command wrote so far.
	Stdout, Stderr *logtest.Buffer
	cancel         context.CancelFunc
	done           chan struct{} // closed when main has returned status
	status         int
}

// StartRun starts main with args on a goroutine of its own; the test reads
// its output as it grows and ends it with [Run.Stop], or waits for it with
// [Run.Wait]. When the test ends the run is stopped if still running, and
// its stderr logged if the test failed.
func StartRun(t testing.TB, main MainFunc, args ...string) *Run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{Stdout: new(logtest.Buffer), Stderr: new(logtest.Buffer), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.status = main(ctx, args, r.Stdout, r.Stderr)
	}()
	t.Cleanup(func() {
		r.Stop(t)
		if t.Failed() {
			t.Logf("stderr of %q:\n%s", args, r.Stderr)
		}
	})
	return r
}

// Stop cancels the run's context, as the command's main does on SIGINT or
// SIGTERM, and returns its exit status; it fails t if the run has not
// returned 10 s later.
func (r *Run) Stop(t testing.TB) int {
	t.Helper()
	r.cancel()
	return r.Wait(t)
}

// Wait returns the run's exit status once it has returned; it fails t if
// it has not 10 s later.
func (r *Run) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-r.done:
		return r.status
	case <-time.After(10 * time.Second):
		t.Fatalf("testenv: the run did not return within 10 s; stderr:\n%s", r.Stderr)
		return -1
	}
}

// Exited reports whether the run has returned.
func (r *Run) Exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
