package dialrace

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listening is an address that accepts, on 127.0.0.1.
func listening(t *testing.T) Target {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return Target{"tcp4", ln.Addr().String()}
}

// refused is an address that refuses: the local end of a connection the
// test keeps open, so that no other test can listen on it meanwhile.
func refused(t *testing.T) Target {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return Target{"tcp4", c.LocalAddr().String()}
}

func TestRace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stagger time.Duration
		targets func(t *testing.T) []Target
		winner  int // -1: none
		started int // attempts started
		// next: the second attempt started at least this long after the
		// first (and less than 1 s more).
		next time.Duration
	}{
		{"one, connects", 0, func(t *testing.T) []Target { return []Target{listening(t)} }, 0, 1, 0},
		{"two at once", 0, func(t *testing.T) []Target { return []Target{refused(t), listening(t)} }, 1, 2, 0},
		// The first connects before the stagger: the second is never dialled.
		{"first wins before the stagger", time.Second, func(t *testing.T) []Target { return []Target{listening(t), listening(t)} }, 0, 1, 0},
		// The first is refused: the second starts at once, not 1 s later.
		{"refused starts the next at once", time.Minute, func(t *testing.T) []Target { return []Target{refused(t), listening(t)} }, 1, 2, 0},
		{"none connects", 20 * time.Millisecond, func(t *testing.T) []Target { return []Target{refused(t), refused(t)} }, -1, 2, 0},
		{"nothing to dial", 0, func(*testing.T) []Target { return nil }, -1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targets := tc.targets(t)
			conn, winner, attempts, err := Race(context.Background(), tc.stagger, targets...)
			if winner != tc.winner || (conn != nil) != (tc.winner >= 0) || (err == nil) != (tc.winner >= 0) {
				t.Fatalf("winner %d, conn %v, err %v; want winner %d", winner, conn != nil, err, tc.winner)
			}
			if len(attempts) != tc.started {
				t.Fatalf("%d attempts, want %d: %+v", len(attempts), tc.started, attempts)
			}
			for i, a := range attempts {
				if a.Target != targets[i] || a.Start.IsZero() || a.Done.Before(a.Start) {
					t.Errorf("attempt %d: %+v, want target %v started and done", i, a, targets[i])
				}
				if i == winner && (a.Err != nil || a.Local != conn.LocalAddr().String()) {
					t.Errorf("winner's attempt %+v, want no error and local %v", a, conn.LocalAddr())
				}
				if i != winner && !errors.Is(a.Err, syscall.ECONNREFUSED) && !errors.Is(a.Err, context.Canceled) && a.Local == "" {
					t.Errorf("loser %d: %+v, want refused, cancelled, or connected and closed", i, a)
				}
			}
			if len(attempts) == 2 {
				gap := attempts[1].Start.Sub(attempts[0].Start)
				if tc.stagger == 0 {
					gap = gap.Abs() // at once: either may reach connect(2) first
				}
				if gap < tc.next || gap > tc.next+time.Second {
					t.Errorf("the second attempt started %v after the first, want %v (+ up to 1 s)", gap, tc.next)
				}
			}
			if conn != nil {
				conn.Close()
			} else if tc.started > 0 && strings.Count(err.Error(), "refused") != tc.started {
				t.Errorf("error %q, want every attempt's refusal", err)
			}
		})
	}
}
