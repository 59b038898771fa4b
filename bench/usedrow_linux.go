package main

import (
	"net/netip"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/netaddr"
)

// usedInput is everything one case of the "as it is used" scenario
// recorded: the client's pairs, the observer's connections, the server's
// log and the benchmark's own capture.
type usedInput struct {
	pairs   []clientPair
	obs     map[netip.AddrPort][]*observed
	lines   []serverLine
	other   []string // server output that was not a JSON log line
	dropped int
	own     map[netip.AddrPort]sniffed
}

// earlyLimit is how early a handshake may complete before its instant.
const earlyLimit = 20 * time.Microsecond

// usedRow summarises the pairs of case c dialled in mode (all pairs if
// mode is empty).
func usedRow(c usedCase, mode string, in usedInput) UsedRow {
	r := UsedRow{Name: c.name, Label: c.label, Mode: mode, Hogs: c.hogs, Note: c.note, Dropped: in.dropped,
		Other: len(in.other)}
	if mode != "" {
		r.Name += "/" + map[string]string{modeBoth: "both", modeV6First: "v6first"}[mode]
		r.Label += ", " + mode
	}
	views, problems := serverViews(in.lines)
	r.Problems = len(problems)
	r.ProblemSample = problems[:min(len(problems), 5)]
	var release, gaps, reply, sees, own, ownSent []time.Duration
	for _, p := range in.pairs {
		if mode != "" && p.Mode != mode {
			continue
		}
		r.Pairs++
		if p.Err != "" {
			r.ClientErrors++
			if len(r.ErrorSample) < 5 {
				r.ErrorSample = append(r.ErrorSample, p.Err)
			}
		}
		if p.Port4 == 0 {
			continue
		}
		r.Replied++
		reply = append(reply, p.Replied.Sub(p.Request))
		if p.Winner == 0 {
			continue
		}
		r.Winners++
		if p.Winner == 10-p.Slow && p.Byte == p.Winner {
			r.FastWon++
		}
		local, err := netip.ParseAddrPort(p.Local)
		if err != nil {
			r.Unmatched++
			continue
		}
		local = netaddr.Canonical(local)
		// A client port comes round again over a run: the connection is
		// the one answered nearest to when the client saw it complete.
		o := nearest(in.obs[local], p.Connected)
		if o == nil {
			r.Unmatched++
			continue
		}
		v := nearestView(views[local], o.synack)
		if v == nil || v.want.Sub(o.synack).Abs() > time.Second {
			r.Unmatched++
			continue
		}
		if !v.releasedFirst {
			r.LogOrder++
		}
		if v.synackSeen {
			r.ServerReported++
			d := v.synack.Sub(o.synack)
			gaps = append(gaps, d)
			r.ServerGapMaxUS = max(r.ServerGapMaxUS, stats.US(d.Abs()))
		}
		sees = append(sees, p.Connected.Sub(o.synack))
		// The benchmark's capture keeps the latest connection of an
		// address: compare it only if it is this one.
		if f, ok := in.own[local]; ok && f.isn == o.isn {
			if !f.synack.IsZero() {
				own = append(own, f.synack.Sub(o.synack))
			}
			if !f.synackSent.IsZero() {
				ownSent = append(ownSent, f.synackSent.Sub(o.synack))
			}
		}
		if !o.syn.Before(v.want) {
			r.SYNAfter++
			continue
		}
		e := o.synack.Sub(v.want)
		if e < -earlyLimit {
			r.Early++
		}
		release = append(release, e)
	}
	r.Release, r.SamplesUS = stats.Summarize(release), stats.SamplesUS(release)
	r.ServerGap, r.Reply, r.ClientSees = stats.Summarize(gaps), stats.Summarize(reply), stats.Summarize(sees)
	r.Own, r.OwnSent = stats.Summarize(own), stats.Summarize(ownSent)
	return r
}
