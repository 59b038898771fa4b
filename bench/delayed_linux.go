package main

// Strategy DelayedListen: the listener opened at the instant, so that
// SYNs before it are refused.

import (
	"errors"
	"fmt"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/listener"
)

// delayedTrial binds a DelayedListen listener whose listen(2) comes at the
// instant, and connects before it: on Linux the kernel refuses at once.
func delayedTrial(sn *sniffer, i int) (trial, error) {
	network, address := familyOf(i)
	want := time.Now().Add(50 * time.Millisecond)
	h, err := listener.Listen(network, address, listener.Config{Strategy: listener.DelayedListen, At: want})
	if err != nil {
		return trial{}, err
	}
	defer h.Close()
	c, err := dialStart(h.AddrPort())
	if err != nil {
		return trial{}, err
	}
	defer c.Close()
	defer sn.forget(c.Local)
	done, err := c.wait(want.Add(3 * time.Second))
	switch {
	case errors.Is(err, errRefused):
		return trial{refused: true, client: done.Sub(c.Started)}, nil
	case err != nil:
		return trial{}, err
	}
	f, err := sn.waitSYNACK(c.Local, time.Now().Add(time.Second))
	if err != nil {
		return trial{}, err
	}
	return trial{err: f.synack.Sub(want), client: done.Sub(want), synack: f.synack}, nil
}

// delayedRow is what the original server's way does on Linux.
func delayedRow(sn *sniffer, n int) (ReleaseRow, error) {
	ts, err := concurrentTrials(n, func(i int) (trial, error) { return delayedTrial(sn, i) })
	if err != nil {
		return ReleaseRow{}, fmt.Errorf("delayed-listen: %w", err)
	}
	r := rowOf("delayed-listen", "DelayedListen (the original's way)", "delayed-listen", "", 0, ts)
	if r.Refused > 0 {
		r.Note = fmt.Sprintf("refused %d/%d before the instant, %s after connect(2) (median): no handshake to time", r.Refused, r.Trials, stats.FmtUS(r.Client.P50US))
	}
	return r, nil
}
