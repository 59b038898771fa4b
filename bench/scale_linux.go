package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/listener"
)

// The Happy Eyeballs delays of the scale runs.
const (
	heFast = 300 * time.Millisecond
	heSlow = 600 * time.Millisecond
)

// pairRun is what one client saw of one pair, and its fast side's
// handshake as the sniffer saw it.
type pairRun struct {
	start, replied time.Time
	ok             bool
	slow, fast     int // families
	client         netip.AddrPort
	syn, synack    time.Time
	connected      bool
	wrongFamily    bool
	noByte         bool // the fast side closed without its family byte
	unseen         bool // the benchmark's capture missed its SYN-ACK
}

// heServer is a happyeyeballs.Server serving a control listener on
// 127.0.0.1:0, its log collected.
type heServer struct {
	he    *happyeyeballs.Server
	log   *logCollector
	ctrl  string
	serve chan error
}

func startHE() (*heServer, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	log := newLogCollector()
	he, err := happyeyeballs.NewServer(happyeyeballs.Config{FastDelay: heFast, SlowDelay: heSlow, Strategy: listener.Replay,
		Spares: 1, Logger: slog.New(log)}) // Spares as the binary's default
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &heServer{
		he:    he,
		log:   log,
		ctrl:  ln.Addr().String(),
		serve: make(chan error, 1),
	}
	go func() { s.serve <- s.he.Serve(ln) }()
	return s, nil
}

// stop shuts the server down and waits for Serve to return.
func (s *heServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := s.he.Shutdown(ctx)
	return errors.Join(err, <-s.serve)
}

// scaleDefault is the library's default timing path, for the scale runs.
var scaleDefault = variant{label: "default", clock: releaseclock.TimerFD, spin: defaultSpin}

// scaleRowsOf runs rounds of n pairs requested at once on one server, for
// each variant in turn, round after round (the first variant going first in
// a different round each time), so that every variant sees the same
// background. Between rounds every pair has closed, and the descriptors are
// back to the baseline; after the server shut down, they must be too.
func scaleRowsOf(sn *sniffer, n, rounds int, vs []variant) ([]ScaleRow, error) {
	rows := make([]ScaleRow, len(vs))
	accs := make([]scaleAcc, len(vs))
	for i, v := range vs {
		rows[i] = ScaleRow{Pairs: n, Rounds: rounds, Variant: v.label}
	}
	runtime.GC()
	base, err := memPoint()
	if err != nil {
		return rows, err
	}
	s, err := startHE()
	if err != nil {
		return rows, err
	}
	wait := !sameClock(vs)
	// A first round, not counted, warms the server and this process up
	// (goroutine stacks, heap): otherwise it weighs on whichever variant
	// goes first. Its descriptors are not checked: after it the server
	// keeps a pair bound ahead of requests, which it did not before.
	var warm ScaleRow
	warm.Baseline = base
	if err := s.variantRound(sn, n, vs[0], false, &scaleAcc{}, &warm); err != nil {
		s.stop()
		return rows, fmt.Errorf("%d pairs, warm-up round: %w", n, err)
	}
	for r := range rounds {
		for k := range vs {
			i := (r + k) % len(vs)
			rows[i].Baseline = base
			if err := s.variantRound(sn, n, vs[i], wait, &accs[i], &rows[i]); err != nil {
				s.stop()
				return rows, fmt.Errorf("%d pairs, %s, round %d: %w", n, vs[i].label, r, err)
			}
		}
	}
	if err := s.stop(); err != nil {
		return rows, fmt.Errorf("%d pairs: shutdown: %w", n, err)
	}
	after, err := closeCheck(n, base)
	for i := range rows {
		accs[i].fill(&rows[i])
		rows[i].After, rows[i].FDLeak = after, after.FDs-base.FDs
	}
	return rows, err
}

// sameClock reports whether every variant uses the same clock and spin,
// the settings the listeners read: rounds of such variants can follow one
// another without waiting for the pairs of the previous round to close, as
// requests do on a real server.
func sameClock(vs []variant) bool {
	for _, v := range vs {
		if v.clock != vs[0].clock || v.spin != vs[0].spin {
			return false
		}
	}
	return true
}

// variantRound runs one round with v's settings. If wait, it then waits
// for every pair of the round to close, so that the next round may change
// the clock's settings, which may only change while no listener is open.
func (s *heServer) variantRound(sn *sniffer, n int, v variant, wait bool, acc *scaleAcc, row *ScaleRow) error {
	undo := v.apply()
	defer undo()
	if v.keep {
		before, err := fdCount()
		if err != nil {
			return err
		}
		keeper, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{Strategy: listener.Replay})
		if err != nil {
			return err
		}
		if err := s.roundClosed(sn, n, acc, row, wait); err != nil {
			keeper.Close()
			return err
		}
		if err := keeper.Close(); err != nil || !wait {
			return err
		}
		return settledTo(before)
	}
	return s.roundClosed(sn, n, acc, row, wait)
}

// roundClosed runs a round and, if wait, waits until the descriptors are
// back to what they were before it: the sign that every pair of it closed.
func (s *heServer) roundClosed(sn *sniffer, n int, acc *scaleAcc, row *ScaleRow, wait bool) error {
	before, err := fdCount()
	if err != nil {
		return err
	}
	if err := s.round(sn, n, acc, row); err != nil || !wait {
		return err
	}
	return settledTo(before)
}

// settledTo waits up to 3 s until at most want descriptors are open.
func settledTo(want int) error {
	n, err := settleFDs(want, 3*time.Second)
	if err == nil && n > want {
		err = fmt.Errorf("%d descriptors still open after the round (want %d)", n-want, want)
	}
	return err
}

// closeCheck samples memory once everything closed, and fails if
// descriptors stayed open.
func closeCheck(n int, base MemPoint) (MemPoint, error) {
	if _, err := settleFDs(base.FDs, 3*time.Second); err != nil {
		return MemPoint{}, err
	}
	runtime.GC()
	after, err := memPoint()
	if err != nil {
		return after, err
	}
	if leak := after.FDs - base.FDs; leak > 0 {
		return after, fmt.Errorf("%d pairs: %d descriptors still open after shutdown (baseline %d, now %d)",
			n, leak, base.FDs, after.FDs)
	}
	return after, nil
}

// scaleAcc accumulates the figures of every round.
type scaleAcc struct {
	reply, release, brokerLate []time.Duration
	rates                      []float64
}

func (a *scaleAcc) fill(row *ScaleRow) {
	row.Reply = stats.Summarize(a.reply)
	row.Release = stats.Summarize(a.release)
	row.BrokerLate = stats.Summarize(a.brokerLate)
	row.SamplesUS = stats.SamplesUS(a.release)
	row.RequestsPerSec = math.Round(stats.Median(a.rates))
}

// round requests n pairs at once, dials both sides of each, samples the
// peak, waits for every fast side, and adds the figures to acc and row.
func (s *heServer) round(sn *sniffer, n int, acc *scaleAcc, row *ScaleRow) error {
	s.log.take()
	runs := make([]pairRun, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var dialed, finished sync.WaitGroup
	for i := range n {
		dialed.Add(1)
		finished.Go(func() { errs[i] = s.pair(sn, &runs[i], i, start, dialed.Done) })
	}
	close(start)
	dialed.Wait()
	peak, err := memPoint()
	if err != nil {
		return err
	}
	row.Peak = maxPoint(row.Peak, peak)
	finished.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nthe broker's warnings: %s", err, s.warnings(10))
	}
	row.Requests += n
	// The broker logs "connected" after it sent the family byte, once the
	// listener's events for the connection are in.
	for end := time.Now().Add(2 * time.Second); s.log.count("connected") < n && time.Now().Before(end); {
		time.Sleep(2 * time.Millisecond)
	}
	return s.account(runs, acc, row)
}

// warnings returns up to n of the broker's log records at level Warn or
// above, with the pair closings, for an error message.
func (s *heServer) warnings(n int) string {
	var out []string
	recs := s.log.take()
	for _, r := range recs {
		if r.Level < slog.LevelWarn && r.Msg != "pair closed" && r.Msg != "extra connection closed" {
			continue
		}
		if why := r.Attrs["why"].String(); r.Msg == "pair closed" && strings.HasPrefix(why, "connected over") {
			continue
		}
		if len(out) == n {
			break
		}
		parts := []string{r.Msg}
		for k, v := range r.Attrs {
			parts = append(parts, k+"="+v.String())
		}
		out = append(out, strings.Join(parts, " "))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// maxPoint keeps the larger of each figure.
func maxPoint(a, b MemPoint) MemPoint {
	return MemPoint{FDs: max(a.FDs, b.FDs), HeapMB: max(a.HeapMB, b.HeapMB), RSSMB: max(a.RSSMB, b.RSSMB), HWMMB: max(a.HWMMB, b.HWMMB)}
}

// pair is one client: it requests a pair when start closes, dials both
// sides, calls dialed, then waits for the fast side and reads its byte.
func (s *heServer) pair(sn *sniffer, run *pairRun, i int, start <-chan struct{}, dialed func()) error {
	once := sync.OnceFunc(dialed)
	defer once()
	run.slow = 4 + 2*(i%2)
	run.fast = 10 - run.slow
	<-start
	run.start = time.Now()
	p4, p6, err := request(s.ctrl, byte(run.slow))
	run.replied = time.Now()
	if err != nil {
		return err
	}
	run.ok = true
	c4, err := dialStart(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p4))
	if err != nil {
		return err
	}
	defer c4.Close()
	defer sn.forget(c4.Local)
	c6, err := dialStart(netip.AddrPortFrom(netip.IPv6Loopback(), p6))
	if err != nil {
		return err
	}
	defer c6.Close()
	defer sn.forget(c6.Local)
	once()
	fast := c4
	if run.fast == 6 {
		fast = c6
	}
	return finishPair(sn, run, fast)
}

// finishPair waits for the fast side's handshake, reads the family byte,
// and keeps the sniffer's times of it.
func finishPair(sn *sniffer, run *pairRun, c *rawClient) error {
	run.client = c.Local
	defer sn.forget(c.Local)
	if _, err := c.wait(run.replied.Add(heFast + 3*time.Second)); err != nil {
		return fmt.Errorf("fast side IPv%d: %w", run.fast, err)
	}
	run.connected = true
	// A fast side closed without its byte (the broker took another
	// connection of the pair for the winner) is counted, not fatal.
	b, err := c.readByte(time.Now().Add(2 * time.Second))
	run.noByte = err != nil
	run.wrongFamily = err == nil && int(b) != run.fast
	// The client connected, so a SYN-ACK came: one the capture missed
	// (its socket's buffer overflows when hundreds arrive at once on a
	// loaded machine) is counted, not fatal, as tcpdump's drops are.
	f, err := sn.waitSYNACK(c.Local, time.Now().Add(time.Second))
	run.unseen = err != nil
	run.syn, run.synack = f.syn, f.synack
	return nil
}

// heLogged is what the broker's "connected" line said of one winning
// handshake: the instant it was asked to complete, and its SYN-ACK if the
// listener saw it.
type heLogged struct {
	want, synack time.Time
	seen         bool
}

// brokerFigures reads the "connected" records of one round by client
// address (their fields: want, synack, synack_seen), and counts the records
// at level Warn or above.
func brokerFigures(recs []logRecord) (map[string]heLogged, int) {
	by := make(map[string]heLogged)
	problems := 0
	for _, r := range recs {
		if r.Level >= slog.LevelWarn {
			problems++
		}
		if r.Msg != "connected" {
			continue
		}
		want, _ := time.Parse(time.RFC3339Nano, r.Attrs["want"].String())
		l := heLogged{want: want, seen: r.Attrs["synack_seen"].Bool()}
		if l.seen {
			l.synack, _ = time.Parse(time.RFC3339Nano, r.Attrs["synack"].String())
		}
		by[r.Attrs["client"].String()] = l
	}
	return by, problems
}

// account adds one round's figures: reply latency, rate, and each fast
// side's release error: the sniffer's SYN-ACK (as it arrived) against the
// instant the broker's "connected" line gives for it.
func (s *heServer) account(runs []pairRun, acc *scaleAcc, row *ScaleRow) error {
	logged, problems := brokerFigures(s.log.take())
	row.LogProblems += problems
	first, last := runs[0].start, runs[0].replied
	for _, r := range runs {
		first, last = minTime(first, r.start), maxTime(last, r.replied)
		acc.reply = append(acc.reply, r.replied.Sub(r.start))
		if r.ok {
			row.ReplyOK++
		}
		if r.connected {
			row.Connected++
		}
		if r.wrongFamily {
			row.WrongFamily++
		}
		if r.noByte {
			row.NoByte++
			continue // the broker logged another connection as the winner
		}
		if r.unseen {
			row.Unseen++
			continue
		}
		l, ok := logged[r.client.String()]
		if !ok || l.want.IsZero() {
			return fmt.Errorf("the broker logged no instant for %v", r.client)
		}
		if !r.syn.Before(l.want) {
			row.SYNAfter++
			continue
		}
		acc.release = append(acc.release, r.synack.Sub(l.want))
		if l.seen {
			acc.brokerLate = append(acc.brokerLate, l.synack.Sub(l.want))
		}
	}
	if d := last.Sub(first); d > 0 {
		acc.rates = append(acc.rates, float64(len(runs))/d.Seconds())
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// controlFloor sends n control requests at once to a minimal server that
// answers each with fixed ports and opens no listener, closing the way the
// broker does. It is the floor of the control reply latency on this
// machine, whatever the broker does to open a pair.
func controlFloor(n int) (CostRow, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return CostRow{}, err
	}
	var served sync.WaitGroup
	served.Go(func() { serveFixed(ln) })
	defer served.Wait()
	defer ln.Close()
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	atOnce(n, func(i int) {
		t := time.Now()
		_, _, errs[i] = request(ln.Addr().String(), 0x04)
		lat[i] = time.Since(t)
	})
	return CostRow{Name: "control-floor", Label: fmt.Sprintf("%d control requests at once, minimal server (no listeners)", n),
		Cost: stats.Summarize(lat), Note: "reply latency; the floor for any way of opening pairs"}, errors.Join(errs...)
}

// scaleRows runs the default on each pair count, each followed by as many
// requests at once to a do-nothing server: the floor of its control reply.
func scaleRows(sn *sniffer, sz sizes, counts []int) ([]ScaleRow, error) {
	var out []ScaleRow
	for _, n := range counts {
		rows, err := scaleLog(sn, sz, n, []variant{scaleDefault})
		if err != nil {
			return append(out, rows...), err
		}
		floor, err := controlFloor(n)
		rows[0].ReplyFloor = floor.Cost
		progress("  %s at once to a do-nothing server: reply p99 %s", pairs(n), stats.FmtUS(floor.Cost.P99US))
		out = append(out, rows[0])
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// scaleLog runs scaleRowsOf with enough rounds for n pairs and reports.
func scaleLog(sn *sniffer, sz sizes, n int, vs []variant) ([]ScaleRow, error) {
	rounds := max(sz.pairRounds, (sz.pairSamples+n-1)/n)
	rows, err := scaleRowsOf(sn, n, rounds, vs)
	for _, row := range rows {
		progress("  %s x %d rounds, %s: reply p99 %s, release p99 %s, FDs %d/%d/%d", pairs(n), rounds, row.Variant,
			stats.FmtUS(row.Reply.P99US), stats.FmtUS(row.Release.P99US), row.Baseline.FDs, row.Peak.FDs, row.After.FDs)
	}
	return rows, err
}
