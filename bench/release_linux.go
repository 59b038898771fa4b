package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/tune"
	"github.com/synhold/synhold/listener"
)

// variant is one timing path of strategy Replay: the listener's clock, its
// spin, and the process settings around the release.
type variant struct {
	name, label string
	clock       releaseclock.Kind
	spin        time.Duration
	// gc is the GC percentage during the trial (debug.SetGCPercent; -1
	// turns the collector off); 0 leaves it.
	gc int
	// procs is GOMAXPROCS during the trial; 0 leaves it.
	procs int
	// every runs the variant in one round out of every (1: all).
	every int
	// bare, if set, does the release by hand instead of with a listener.
	bare *bareMode
	// keep, for a scale run, keeps another listener open meanwhile, so
	// that the capture engine never closes between pairs.
	keep bool
	note string
}

// defaultSpin is the release clock's spin as the module ships it.
var defaultSpin = releaseclock.DefaultConfig().Spin

// apply sets v's clock and process settings and returns what undoes them.
// No listener may be open: the clock takes its tuning when it starts.
func (v variant) apply() (undo func()) {
	t := tune.Get()
	t.Clock.Kind, t.Clock.Spin = v.clock, v.spin
	old := tune.Set(t)
	gc, procs := 0, 0
	if v.gc != 0 {
		gc = debug.SetGCPercent(v.gc)
	}
	if v.procs > 0 {
		procs = runtime.GOMAXPROCS(v.procs)
	}
	return func() {
		tune.Set(old)
		if v.gc != 0 {
			debug.SetGCPercent(gc)
		}
		if procs > 0 {
			runtime.GOMAXPROCS(procs)
		}
	}
}

// clockName names a clock kind for the report.
func clockName(k releaseclock.Kind) string {
	if k == releaseclock.RuntimeTimer {
		return "runtime timer"
	}
	return "timerfd"
}

// trial is what one held handshake gave.
type trial struct {
	err      time.Duration // SYN-ACK - instant
	client   time.Duration // connect seen complete - instant
	lib      time.Duration // |listener's SYN-ACK time - ours|
	libOK    bool
	synAfter bool // the SYN came after the instant: left out
	refused  bool
	synack   time.Time
	// opened and replayed are, from the listener's own records, when it
	// had detached its filter (its Released event) and when the replay's
	// sendto(2) had returned, each minus the instant.
	opened, replayed     time.Duration
	openedOK, replayedOK bool
}

// releaseProbe keeps the time of a listener's listener-wide Released event.
type releaseProbe struct {
	mu sync.Mutex
	at time.Time
}

func (p *releaseProbe) onEvent(e listener.Event) {
	if e.Kind == listener.Released && !e.Client.IsValid() {
		p.mu.Lock()
		p.at = e.Time
		p.mu.Unlock()
	}
}

func (p *releaseProbe) get() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at
}

// instantOffset is how long after the SYN the instant is set: 20-50 ms.
func instantOffset() time.Duration {
	return 20*time.Millisecond + rand.N(30*time.Millisecond)
}

// familyOf alternates IPv4 and IPv6 by trial number.
func familyOf(i int) (network, address string) {
	if i%2 == 0 {
		return "tcp4", "127.0.0.1:0"
	}
	return "tcp6", "[::1]:0"
}

// heldTrial opens one listener with strategy s, connects a client, sets the
// instant 20-50 ms later and measures the SYN-ACK against it.
func heldTrial(sn *sniffer, s listener.Strategy, i int) (trial, error) {
	network, address := familyOf(i)
	var probe releaseProbe
	h, err := listener.Listen(network, address, listener.Config{Strategy: s, OnEvent: probe.onEvent})
	if err != nil {
		return trial{}, err
	}
	defer h.Close()
	if h.Strategy() != s {
		return trial{}, fmt.Errorf("listener picked strategy %v, want %v", h.Strategy(), s)
	}
	c, err := dialStart(h.AddrPort())
	if err != nil {
		return trial{}, err
	}
	defer c.Close()
	defer sn.forget(c.Local)
	want := time.Now().Add(instantOffset())
	h.ReleaseAt(want)
	t, err := measure(sn, h, c, want)
	if err == nil && s == listener.Replay {
		t.opened, t.openedOK = libTime(probe.get, want)
	}
	return t, err
}

// libTime waits briefly for the listener to report a time (its events and
// records trail the handshake), and returns it minus want.
func libTime(get func() time.Time, want time.Time) (time.Duration, bool) {
	for end := time.Now().Add(100 * time.Millisecond); ; time.Sleep(time.Millisecond) {
		if t := get(); !t.IsZero() {
			return t.Sub(want), true
		}
		if time.Now().After(end) {
			return 0, false
		}
	}
}

// measure waits for c's handshake and times its SYN-ACK against want; h,
// if not nil, is asked for its own record of it.
func measure(sn *sniffer, h *listener.Held, c *rawClient, want time.Time) (trial, error) {
	f, err := sn.waitSYN(c.Local, want.Add(time.Second))
	if err != nil {
		return trial{}, err
	}
	done, err := c.wait(want.Add(3 * time.Second))
	if err != nil {
		return trial{}, err
	}
	if f, err = sn.waitSYNACK(c.Local, time.Now().Add(time.Second)); err != nil {
		return trial{}, err
	}
	t := trial{err: f.synack.Sub(want), client: done.Sub(want), synAfter: !f.syn.Before(want), synack: f.synack}
	if h == nil {
		return t, nil
	}
	var hs listener.Handshake
	if _, t.libOK = libTime(func() time.Time {
		hs, _ = h.Handshake(c.Local)
		return hs.SYNACK
	}, want); t.libOK {
		t.lib = hs.SYNACK.Sub(f.synack).Abs()
	}
	if !hs.Released.IsZero() && h.Strategy() == listener.Replay {
		t.replayed, t.replayedOK = hs.Released.Sub(want), true
	}
	return t, nil
}

// runVariants runs trials rounds; in each, every variant due that round
// runs one trial, so that all of them see the same background load, in an
// order that rotates from round to round, so that none always follows the
// same one.
func runVariants(sn *sniffer, vs []variant, rounds int) (map[string][]trial, error) {
	out := make(map[string][]trial)
	for i := range rounds {
		for k := range vs {
			v := vs[(i+k)%len(vs)] // a different variant goes first each round
			if i%v.every != 0 {
				continue
			}
			undo := v.apply()
			var t trial
			var err error
			if v.bare != nil {
				t, err = bareTrial(sn, *v.bare, i/v.every)
			} else {
				t, err = heldTrial(sn, listener.Replay, i/v.every)
			}
			undo()
			if err != nil {
				return nil, fmt.Errorf("%s trial %d: %w", v.name, i, err)
			}
			out[v.name] = append(out[v.name], t)
		}
	}
	return out, nil
}

// rowOf summarises the trials of one row.
func rowOf(name, label, strategy, clock string, spin time.Duration, ts []trial) ReleaseRow {
	r := ReleaseRow{Name: name, Label: label, Strategy: strategy, Clock: clock, SpinUS: stats.US(spin), Trials: len(ts)}
	var errs, clients []time.Duration
	for _, t := range ts {
		switch {
		case t.refused:
			r.Refused++
			clients = append(clients, t.client)
			continue
		case t.synAfter:
			r.SYNAfter++
			continue
		}
		r.Completed++
		errs = append(errs, t.err)
		clients = append(clients, t.client)
		if t.libOK {
			r.LibCompared++
			r.LibMaxDiffUS = max(r.LibMaxDiffUS, stats.US(t.lib))
		}
	}
	r.Error, r.Client, r.SamplesUS = stats.Summarize(errs), stats.Summarize(clients), stats.SamplesUS(errs)
	r.Opened, r.Replayed = libSummaries(ts)
	return r
}

// variantRows turns the trials of each variant into its row.
func variantRows(vs []variant, got map[string][]trial) []ReleaseRow {
	var rows []ReleaseRow
	for _, v := range vs {
		clock := clockName(v.clock)
		if v.bare != nil {
			clock = bareClockName
		}
		r := rowOf(v.name, v.label, "replay", clock, v.spin, got[v.name])
		r.Note = v.note
		rows = append(rows, r)
	}
	return rows
}

// concurrentTrials runs n trials of fn at once and returns their results.
func concurrentTrials(n int, fn func(i int) (trial, error)) ([]trial, error) {
	ts := make([]trial, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ts[i], errs[i] = fn(i) })
	}
	wg.Wait()
	return ts, errors.Join(errs...)
}

// libSummaries summarises the listener's own times of the trials that
// completed: filter detached, and replay returned, each minus the instant.
func libSummaries(ts []trial) (opened, replayed stats.Summary) {
	var ops, rs []time.Duration
	for _, t := range ts {
		if t.refused || t.synAfter {
			continue
		}
		if t.openedOK {
			ops = append(ops, t.opened)
		}
		if t.replayedOK {
			rs = append(rs, t.replayed)
		}
	}
	return stats.Summarize(ops), stats.Summarize(rs)
}
