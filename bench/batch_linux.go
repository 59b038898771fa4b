package main

// A batch: many listeners released at one instant, to show what each
// further release in the same pass adds.

import (
	"fmt"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/listener"
)

// batchRelease holds n listeners' clients and releases them all at one
// instant, which the clock fires in one pass; it repeats that batches times.
func batchRelease(sn *sniffer, n, batches int) (ReleaseRow, error) {
	undo := variant{clock: releaseclock.TimerFD, spin: defaultSpin}.apply()
	defer undo()
	var all []trial
	var steps []time.Duration
	for b := range batches {
		ts, err := batchOnce(sn, n, b)
		if err != nil {
			return ReleaseRow{}, fmt.Errorf("batch %d: %w", b, err)
		}
		all = append(all, ts...)
		steps = append(steps, perRelease(ts))
	}
	r := rowOf("replay/batch", fmt.Sprintf("Replay, %d listeners at one instant, one pass", n), "replay", "timerfd", defaultSpin, all)
	r.Batch = n
	r.PerReleaseUS = stats.Summarize(steps).P50US
	r.Note = fmt.Sprintf("%d batches; each further release in the pass adds %s (median)", batches, stats.FmtUS(r.PerReleaseUS))
	return r, nil
}

// batchOnce is one batch of batchRelease.
func batchOnce(sn *sniffer, n, b int) ([]trial, error) {
	hs := make([]*listener.Held, 0, n)
	cs := make([]*rawClient, 0, n)
	defer func() {
		for _, c := range cs {
			sn.forget(c.Local)
			c.Close()
		}
		for _, h := range hs {
			h.Close()
		}
	}()
	for i := range n {
		network, address := familyOf(b + i)
		h, err := listener.Listen(network, address, listener.Config{Strategy: listener.Replay})
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
		c, err := dialStart(h.AddrPort())
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	want := time.Now().Add(instantOffset())
	for _, h := range hs {
		h.ReleaseAt(want)
	}
	ts := make([]trial, n)
	for i := range n {
		t, err := measure(sn, hs[i], cs[i], want)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	return ts, nil
}

// perRelease is how much each further SYN-ACK of a batch came after the
// first: (last - first) / (n - 1).
func perRelease(ts []trial) time.Duration {
	if len(ts) < 2 {
		return 0
	}
	first, last := ts[0].synack, ts[0].synack
	for _, t := range ts[1:] {
		if t.synack.Before(first) {
			first = t.synack
		}
		if t.synack.After(last) {
			last = t.synack
		}
	}
	return last.Sub(first) / time.Duration(len(ts)-1)
}
