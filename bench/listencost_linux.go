package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/listener"
	"github.com/synhold/synhold/listener/capture"
	"golang.org/x/sys/unix"
)

// listenCosts times what opening and closing one held listener costs, and
// its parts done by hand: a pair of the Happy Eyeballs server opens two, so
// this bounds how fast the control port can answer many requests at once.
func listenCosts(calls, pairs int) ([]CostRow, error) {
	var rows []CostRow
	for _, fn := range []func(int) ([]CostRow, error){coldListen, warmListen, byHandListen, netnsStat, attachOnly, captureOpenClose} {
		rs, err := fn(calls)
		if err != nil {
			return nil, err
		}
		rows = append(rows, rs...)
	}
	floor, err := controlFloor(pairs)
	rows = append(rows, floor)
	for _, r := range rows {
		progress("  %-62s p50 %9s  p99 %9s", r.Label, stats.FmtUS(r.Cost.P50US), stats.FmtUS(r.Cost.P99US))
	}
	return rows, err
}

// timed returns how long fn took.
func timed(fn func() error) (time.Duration, error) {
	t := time.Now()
	err := fn()
	return time.Since(t), err
}

// timeCalls makes n calls of call, one after the other, and returns the
// durations each reported.
func timeCalls(n int, call func() (time.Duration, error)) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		d, err := call()
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// openClose times n calls of open and of the close it returns, one after
// the other.
func openClose(n int, open func() (closeFn func() error, err error)) (opens, closes []time.Duration, err error) {
	for range n {
		var closeFn func() error
		d, err := timed(func() (err error) {
			closeFn, err = open()
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		c, err := timed(closeFn)
		if err != nil {
			return nil, nil, err
		}
		opens, closes = append(opens, d), append(closes, c)
	}
	return opens, closes, nil
}

// coldListen opens and closes one listener with nothing else open, so each
// Listen starts the capture engine and the clock, and each Close stops them.
func coldListen(calls int) ([]CostRow, error) {
	opens, closes, err := openClose(max(5, calls/10), func() (func() error, error) {
		h, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: listener.Replay})
		if err != nil {
			return nil, err
		}
		return h.Close, nil
	})
	if err != nil {
		return nil, err
	}
	return []CostRow{
		{Name: "listen/cold", Label: "listener.Listen, nothing else open", Cost: stats.Summarize(opens),
			Note: "opens the capture engine (AF_PACKET socket, two raw sockets) and starts the clock thread"},
		{Name: "close/last", Label: "Held.Close of the last listener", Cost: stats.Summarize(closes),
			Note: "closes the engine and stops the clock"},
	}, nil
}

// warmListen opens calls listeners while another keeps the engine and the
// clock running, then closes them.
func warmListen(calls int) ([]CostRow, error) {
	keep, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: listener.Replay})
	if err != nil {
		return nil, err
	}
	defer keep.Close()
	hs := make([]*listener.Held, 0, calls)
	defer func() {
		for _, h := range hs {
			h.Close()
		}
	}()
	var opens, closes []time.Duration
	for range calls {
		var h *listener.Held
		d, err := timed(func() (err error) {
			h, err = listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: listener.Replay})
			return err
		})
		if err != nil {
			return nil, err
		}
		hs, opens = append(hs, h), append(opens, d)
	}
	for _, h := range hs {
		d, err := timed(h.Close)
		if err != nil {
			return nil, err
		}
		closes = append(closes, d)
	}
	hs = nil
	return []CostRow{
		{Name: "listen/warm", Label: "listener.Listen, others open", Cost: stats.Summarize(opens), Note: fmt.Sprintf("%d listeners", calls)},
		{Name: "close/warm", Label: "Held.Close, others open", Cost: stats.Summarize(closes)},
	}, nil
}

// byHandListen times the system calls of a held listener without the
// library: socket, hold filter, bind, getsockname, listen; then close.
func byHandListen(calls int) ([]CostRow, error) {
	prog, err := holdSockFprog()
	if err != nil {
		return nil, err
	}
	opens, closes, err := openClose(calls, func() (func() error, error) {
		fd, err := heldSyscalls(prog)
		return func() error { return unix.Close(fd) }, err
	})
	if err != nil {
		return nil, err
	}
	return []CostRow{
		{Name: "listen/by-hand", Label: "by hand: socket, hold filter, bind, listen", Cost: stats.Summarize(opens),
			Note: "the system calls alone, no runtime poller"},
		{Name: "close/by-hand", Label: "by hand: close", Cost: stats.Summarize(closes)},
	}, nil
}

// holdSockFprog is the hold filter as setsockopt takes it.
func holdSockFprog() ([]unix.SockFilter, error) {
	raw := replay.HoldFilter()
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return f, nil
}

// heldSyscalls opens a held listening socket on 127.0.0.1 by hand.
func heldSyscalls(prog []unix.SockFilter) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	}
	if err == nil {
		_, err = unix.Getsockname(fd)
	}
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// netnsStat times what each Listen does to find its network namespace:
// lock the thread, stat /proc/thread-self/ns/net, unlock.
func netnsStat(calls int) ([]CostRow, error) {
	ds, err := timeCalls(calls, func() (time.Duration, error) {
		return timed(func() error {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var st unix.Stat_t
			return unix.Stat("/proc/thread-self/ns/net", &st)
		})
	})
	if err != nil {
		return nil, err
	}
	return []CostRow{{Name: "netns-stat", Label: "stat /proc/thread-self/ns/net on a locked thread", Cost: stats.Summarize(ds),
		Note: "what acquireEngine does on every Listen"}}, nil
}

// attachOnly times SO_ATTACH_FILTER of the hold filter on fresh sockets:
// the kernel checks and JIT-compiles a classic program per socket.
func attachOnly(calls int) ([]CostRow, error) {
	prog, err := holdSockFprog()
	if err != nil {
		return nil, err
	}
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	ds, err := timeCalls(calls, func() (time.Duration, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, os.NewSyscallError("socket", err)
		}
		defer unix.Close(fd)
		return timed(func() error {
			return os.NewSyscallError("setsockopt SO_ATTACH_FILTER", unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp))
		})
	})
	if err != nil {
		return nil, err
	}
	return []CostRow{{Name: "attach", Label: "SO_ATTACH_FILTER of the hold filter", Cost: stats.Summarize(ds),
		Note: "classic BPF, checked and JIT-compiled per socket"}}, nil
}

// captureOpenClose times opening and closing an AF_PACKET capture socket,
// what the first Listen and the last Close do besides the rest.
func captureOpenClose(calls int) ([]CostRow, error) {
	opens, closes, err := openClose(max(5, calls/10), func() (func() error, error) {
		sock, err := capture.Open(capture.Config{})
		if err != nil {
			return nil, err
		}
		return sock.Close, nil
	})
	if err != nil {
		return nil, err
	}
	return []CostRow{
		{Name: "capture/open", Label: "capture.Open (AF_PACKET socket, filter, bind)", Cost: stats.Summarize(opens)},
		{Name: "capture/close", Label: "capture Socket.Close", Cost: stats.Summarize(closes),
			Note: "the kernel waits for a grace period (synchronize_net) before close(2) returns"},
	}, nil
}
