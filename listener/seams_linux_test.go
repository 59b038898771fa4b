package listener

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/testenv"
)

// TestListenSyscallFaults makes bind(2) and listen(2) fail: Listen returns
// the error, and leaves nothing open.
func TestListenSyscallFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func() (undo func())
		want   error
	}{
		{"bind", func() func() {
			old := bindFunc
			bindFunc = func(int, unix.Sockaddr) error { return unix.EADDRINUSE }
			return func() { bindFunc = old }
		}, unix.EADDRINUSE},
		{"listen", func() func() {
			old := listenFunc
			listenFunc = func(int, int) error { return unix.ENOBUFS }
			return func() { listenFunc = old }
		}, unix.ENOBUFS},
	} {
		for _, strategy := range []Strategy{Replay, Retransmit, DelayedListen} {
			t.Run(tc.name+"/"+strategy.String(), func(t *testing.T) {
				closeIdleEngines()
				fds := testenv.OpenFDs(t)
				undo := tc.inject()
				var ev events
				// At is now: DelayedListen calls listen(2) inside Listen, at its release.
				h, err := Listen("tcp4", "127.0.0.1:0", Config{Strategy: strategy, At: time.Now(), OnEvent: ev.add})
				undo()
				if strategy == Replay {
					skipUnlessListened(t, "tcp4", err)
				}
				if strategy == DelayedListen && tc.name == "listen" {
					if err != nil {
						t.Fatalf("Listen: %v, want the error on the release", err)
					}
					h.Close() // delivers the Released event
					if rel := ev.of(Released); len(rel) != 1 || !errors.Is(rel[0].Err, tc.want) {
						t.Errorf("Released events %+v, want one with %v", rel, tc.want)
					}
				} else if !errors.Is(err, tc.want) {
					if h != nil {
						h.Close()
					}
					t.Fatalf("Listen: %v, want %v", err, tc.want)
				}
				closeIdleEngines()
				waitFor(t, func() bool { return testenv.OpenFDs(t) <= fds })
			})
		}
	}
}

// TestSendFaultIsTheReleasesError makes the raw send fail: the release (or
// the refusal) reports it in its event.
func TestSendFaultIsTheReleasesError(t *testing.T) {
	old := send
	send = func(*replay.Conn, []byte, unix.Sockaddr) error { return os.NewSyscallError("sendto", unix.EPERM) }
	t.Cleanup(func() { send = old })
	for _, tc := range []struct {
		name string
		kind EventKind
		cfg  func(at time.Time) Config
	}{
		{"replay", Released, func(at time.Time) Config { return Config{Strategy: Replay, At: at} }},
		{"refuse", Refused, func(at time.Time) Config {
			return Config{Strategy: Replay, Decide: func(SYN) Verdict { return Verdict{At: at, Refuse: true} }}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev events
			cfg := tc.cfg(time.Now().Add(200 * time.Millisecond))
			cfg.OnEvent = ev.add
			h := listenOrSkip(t, "tcp4", "127.0.0.1:0", cfg)
			go func() {
				if c, err := net.DialTimeout("tcp4", h.Addr().String(), 3*time.Second); err == nil {
					c.Close()
				}
			}()
			waitFor(t, func() bool {
				for _, e := range ev.of(tc.kind) {
					if e.Replayed > 0 || e.Kind == Refused {
						return true
					}
				}
				return false
			})
			for _, e := range ev.of(tc.kind) {
				if (e.Replayed > 0 || e.Kind == Refused) && !errors.Is(e.Err, unix.EPERM) {
					t.Errorf("%v event error %v, want the send's EPERM", e.Kind, e.Err)
				}
			}
		})
	}
}

// TestPlugConnectErrors: EINTR from the plug's connect means the connect
// goes on; any other error is returned.
func TestPlugConnectErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{{"EINTR", unix.EINTR, true}, {"refused", unix.ECONNREFUSED, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			local := ln.Addr().(*net.TCPAddr).AddrPort()
			plug, _, err := plugSocket(local)
			if err != nil {
				t.Fatal(err)
			}
			defer plug.Close()
			old := connectFunc
			connectFunc = func(fd int, sa unix.Sockaddr) error {
				if tc.ok {
					_ = old(fd, sa) // under way, then "interrupted"
				}
				return tc.err
			}
			defer func() { connectFunc = old }()
			err = plugQueue(plug, local)
			if tc.ok && err != nil {
				t.Errorf("plugQueue after EINTR: %v, want connected", err)
			}
			if !tc.ok && !errors.Is(err, tc.err) {
				t.Errorf("plugQueue: %v, want %v", err, tc.err)
			}
		})
	}
}
