package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		trueAt int // the call from which cond is true; 0: never
		fail   string
	}{
		{"at once", 1, ""},
		{"on the fifth look", 5, ""},
		{"never", 0, "testenv: waited 50ms for the thing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			r := run(func(tb testing.TB) {
				WaitFor(tb, 50*time.Millisecond, "the thing", func() bool {
					calls++
					return tc.trueAt > 0 && calls >= tc.trueAt
				})
			})
			if r.failed != tc.fail || tc.trueAt > 0 && calls != tc.trueAt {
				t.Errorf("failed %q after %d calls; want %q after %d", r.failed, calls, tc.fail, tc.trueAt)
			}
		})
	}
}

// TestServe: each connection reaches the handler, several at once; the
// listener closes when the test ends.
func TestServe(t *testing.T) {
	var addr string
	t.Run("serve", func(t *testing.T) {
		addr = Serve(t, "tcp4", "127.0.0.1:0", func(c net.Conn) {
			defer c.Close()
			b := make([]byte, 5)
			if _, err := io.ReadFull(c, b); err == nil {
				c.Write([]byte(strings.ToUpper(string(b))))
			}
		}).String()
		// The first connection's handler waits for its five bytes while the
		// second is served: each connection has a goroutine of its own.
		var conns []net.Conn
		for range 2 {
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			conns = append(conns, c)
		}
		for _, i := range []int{1, 0} {
			fmt.Fprintf(conns[i], "conn%d", i)
			if b, err := io.ReadAll(conns[i]); string(b) != fmt.Sprintf("CONN%d", i) {
				t.Errorf("connection %d read %q, %v", i, b, err)
			}
		}
	})
	if c, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after the test ended", addr)
	}
}

// TestStartRun: the run's output as it grows, its status from Stop (the
// context cancelled, as the command's main does on a signal) or Wait (it
// returned by itself), and a run still going when the test ends is
// stopped.
func TestStartRun(t *testing.T) {
	untilCancelled := func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		fmt.Fprintln(stdout, "serving", strings.Join(args, " "))
		<-ctx.Done()
		fmt.Fprintln(stderr, "signal received")
		return 3
	}
	t.Run("stop", func(t *testing.T) {
		r := StartRun(t, untilCancelled, "-a", "b")
		WaitFor(t, 5*time.Second, "the first line", func() bool { return strings.Contains(r.Stdout.String(), "\n") })
		if r.Exited() {
			t.Error("exited before Stop")
		}
		if code := r.Stop(t); code != 3 || r.Stdout.String() != "serving -a b\n" || r.Stderr.String() != "signal received\n" || !r.Exited() {
			t.Errorf("status %d, stdout %q, stderr %q, exited %v", code, r.Stdout, r.Stderr, r.Exited())
		}
		if code := r.Stop(t); code != 3 {
			t.Errorf("Stop again: %d, want 3", code)
		}
	})
	t.Run("wait", func(t *testing.T) {
		r := StartRun(t, func(ctx context.Context, args []string, stdout, stderr io.Writer) int { return len(args) }, "x", "y")
		if code := r.Wait(t); code != 2 {
			t.Errorf("Wait: %d, want 2", code)
		}
	})
	var left *Run
	t.Run("left running", func(t *testing.T) { left = StartRun(t, untilCancelled) })
	if !left.Exited() || left.Stderr.String() != "signal received\n" {
		t.Errorf("a run left going: exited %v, stderr %q; want it stopped when its test ended", left.Exited(), left.Stderr)
	}
}
