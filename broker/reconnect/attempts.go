package reconnect

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/synhold/synhold/backoff"
	"github.com/synhold/synhold/internal/eventlog"
)

// defaultMaxMs is the cap a client gets when it asks for
// max_reconnect_backoff_ms = 0, as on the reference server.
const defaultMaxMs = 120 * 1000

// Limits that keep a flood of foreign connections from costing memory and
// time: attempts beyond maxAttempts are counted, not kept, and the
// per-attempt verdict is not computed past liveMax attempts.
const (
	maxAttempts = 1 << 16
	liveMax     = 1024
)

// attempt is one connection attempt on the retry port: its first SYN, the
// SYN's retransmissions and when accept returned it, each when known.
type attempt struct {
	src, dst    netip.AddrPort
	isn         uint32
	synAt       time.Time // zero when the SYN was not seen
	retransmits []time.Time
	acceptAt    time.Time // zero until accepted
}

// session is a test in progress: the client under test, its policy and its
// attempts. Its methods are not safe for concurrent use; Server.mu
// guards it.
type session struct {
	n        int
	client   netip.AddrPort
	policy   backoff.Policy
	opts     backoff.Options
	ts       Timestamps
	started  time.Time
	attempts []*attempt
	dropped  int // attempts past maxAttempts
}

// newSession starts a test of client with the reference policy capped at
// maxMs (0: 120 s) and attempts timed by ts.
func newSession(client netip.AddrPort, maxMs int32, ts Timestamps) *session {
	if maxMs == 0 {
		maxMs = defaultMaxMs
	}
	p := backoff.Default()
	p.Max = time.Duration(maxMs) * time.Millisecond
	t := &session{client: client, policy: p, ts: ts, started: time.Now()}
	switch {
	case !client.IsValid():
		// Unknown client: every source counts, as on the reference server.
	case client.Addr().IsLoopback():
		// A loopback client may reach the control port over one family and
		// the retry port over the other.
		t.opts = backoff.Loopback()
	default:
		t.opts = backoff.Options{Clients: []netip.Addr{client.Addr()}}
	}
	return t
}

// loopback reports whether the client under test is every loopback address.
func (t *session) loopback() bool { return t.client.IsValid() && t.client.Addr().IsLoopback() }

// syn records a SYN. It returns the attempt it belongs to and whether the
// SYN began it; a retransmission (flagged by the listener, or with the
// source and ISN of an attempt seen before) only adds its time, and one of
// an attempt begun before the test returns nil.
func (t *session) syn(src, dst netip.AddrPort, isn uint32, at time.Time, retransmit bool) (*attempt, bool) {
	for i := len(t.attempts) - 1; i >= 0; i-- {
		a := t.attempts[i]
		if a.src == src && !a.synAt.IsZero() && a.isn == isn {
			a.retransmits = append(a.retransmits, at)
			return a, false
		}
	}
	if retransmit {
		return nil, false
	}
	// accept can come first when the capture's reader is scheduled late.
	for i := len(t.attempts) - 1; i >= 0; i-- {
		a := t.attempts[i]
		if a.src == src && a.synAt.IsZero() && !a.acceptAt.Before(at) {
			a.synAt, a.isn = at, isn
			return a, true
		}
	}
	a := &attempt{src: src, dst: dst, isn: isn, synAt: at}
	t.add(a)
	return a, true
}

// accept records an accepted connection and returns its attempt: the latest
// attempt from src whose SYN came before at and that was not accepted yet,
// or a new one.
func (t *session) accept(src, dst netip.AddrPort, at time.Time) *attempt {
	for i := len(t.attempts) - 1; i >= 0; i-- {
		a := t.attempts[i]
		if a.src == src && a.acceptAt.IsZero() && !a.synAt.IsZero() && !a.synAt.After(at) {
			a.acceptAt = at
			if dst.IsValid() {
				a.dst = dst
			}
			return a
		}
	}
	a := &attempt{src: src, dst: dst, acceptAt: at}
	t.add(a)
	return a
}

// add keeps a, or counts it past maxAttempts.
func (t *session) add(a *attempt) {
	if len(t.attempts) >= maxAttempts {
		t.dropped++
		return
	}
	t.attempts = append(t.attempts, a)
}

// backoffAttempts returns the attempts timed by ts, for backoff.Analyze.
// With SYN times every retransmitted SYN is included as well, so that the
// analysis reports it as removed; an attempt whose SYN was not seen keeps its
// accept time. With accept times, attempts not accepted yet are left out.
func (t *session) backoffAttempts(ts Timestamps) []backoff.Attempt {
	var out []backoff.Attempt
	for _, a := range t.attempts {
		hasSYN := !a.synAt.IsZero()
		ba := backoff.Attempt{Src: a.src, Dst: a.dst, ISN: a.isn, HasISN: hasSYN}
		switch {
		case ts == SYN && hasSYN:
			ba.Time = a.synAt
			out = append(out, ba)
			for _, rt := range a.retransmits {
				ba.Time = rt
				out = append(out, ba)
			}
		case !a.acceptAt.IsZero():
			ba.Time = a.acceptAt
			out = append(out, ba)
		}
	}
	return out
}

// analyze judges the attempts timed by ts.
func (t *session) analyze(ts Timestamps) backoff.Analysis {
	return backoff.Analyze(t.backoffAttempts(ts), t.policy, t.opts)
}

// skew returns the time from SYN to accept over the attempts that have both.
func (t *session) skew() Skew {
	var d []time.Duration
	for _, a := range t.attempts {
		if !a.synAt.IsZero() && !a.acceptAt.IsZero() {
			d = append(d, a.acceptAt.Sub(a.synAt))
		}
	}
	return newSkew(d)
}

// attemptLine is the log line of one attempt: where it stands in its series and
// the reference rule's verdict on the gap before it.
type attemptLine struct {
	test     int
	at       backoff.Attempt
	sinceRun time.Duration
	series   int // 1-based; 0 when the attempt is not in a series
	index    int // the attempt's index in its series
	gap      backoff.Gap
	removed  *backoff.Removed
	skipped  bool // too many attempts to judge each live
}

// live judges a, just recorded, against the test's attempts so far.
func (t *session) live(a *attempt) attemptLine {
	at := backoff.Attempt{Src: a.src, Dst: a.dst, ISN: a.isn, HasISN: !a.synAt.IsZero(), Time: a.synAt}
	if t.ts == Accept || at.Time.IsZero() {
		at.Time = a.acceptAt
	}
	l := attemptLine{test: t.n, at: at, sinceRun: at.Time.Sub(t.started)}
	if len(t.attempts) > liveMax {
		l.skipped = true
		return l
	}
	an := t.analyze(t.ts)
	for i := range an.Removed {
		if rm := an.Removed[i]; rm.Attempt.Src == at.Src && rm.Attempt.Time.Equal(at.Time) {
			l.removed = &rm
			return l
		}
	}
	for si, s := range an.Series {
		for i, x := range s.Attempts {
			if x.Src == at.Src && x.Time.Equal(at.Time) {
				l.series, l.index = si+1, i
				if i > 0 {
					l.gap = s.Gaps[i-1]
				}
				return l
			}
		}
	}
	return l
}

// log writes the line: at Error for an attempt from another host (the
// reference server logs an error for it too), at Info otherwise.
// The line's time is the attempt's (its first SYN's kernel time, or its
// accept time), not the moment it was written, so that it lines up with a
// capture of the reader's own.
func (l attemptLine) log(log *slog.Logger) {
	attrs := []any{"test", l.test, "src", l.at.Src, "dst", l.at.Dst, "since_start_ms", millis(l.sinceRun)}
	switch {
	case l.removed != nil && l.removed.Reason == backoff.ForeignSource:
		eventlog.At(log, slog.LevelError, l.at.Time, "reconnect: attempt from a host other than the client under test; left out of the verdict",
			append(attrs, "verdict", "foreign", "detail", l.removed.Detail)...)
	case l.removed != nil:
		eventlog.At(log, slog.LevelInfo, l.at.Time, "reconnect: attempt left out", append(attrs, "verdict", string(l.removed.Reason), "detail", l.removed.Detail)...)
	case l.skipped || l.series == 0:
		eventlog.At(log, slog.LevelInfo, l.at.Time, "reconnect: attempt", append(attrs, "verdict", "not judged live")...)
	case l.index == 0:
		eventlog.At(log, slog.LevelInfo, l.at.Time, "reconnect: attempt", append(attrs, "series", l.series, "attempt", 0, "verdict", "first")...)
	default:
		g := l.gap
		eventlog.At(log, slog.LevelInfo, l.at.Time, "reconnect: attempt", append(attrs, "series", l.series, "attempt", l.index,
			"gap_ms", millis(g.Got), "expected_ms", millis(g.Expected), "lo_ms", millis(g.Lo), "hi_ms", millis(g.Hi),
			"verdict", string(g.Verdict))...)
	}
}

// millis converts d to milliseconds with microsecond resolution, for logs.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
