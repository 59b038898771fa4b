package happyeyeballs

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/synhold/synhold/listener"
)

// maxReported bounds how many pairs' timelines a Server keeps for Report;
// later pairs are still judged, logged and counted.
const maxReported = 2000

// Mark is one event of a pair's timeline, for the report and its picture.
type Mark struct {
	// Family is the side it happened on.
	Family Family `json:"family"`
	// Kind is "syn" (a new connection's first SYN), "retransmit" (a SYN
	// sent again: not a new attempt), "release" (the side let held
	// handshakes through), "synack" (the kernel answered a SYN) or
	// "connected" (the winner was accepted).
	Kind string `json:"kind"`
	// Client is the connection's client address; "" for a listener-wide
	// release.
	Client string `json:"client,omitempty"`
	// At is when: kernel time for SYNs and SYN-ACKs.
	At time.Time `json:"at"`
	// MS is At in ms after the reply to the pair request.
	MS float64 `json:"ms"`
}

// PairReport is what a Server saw and judged of one pair.
type PairReport struct {
	Judgement
	// Slow is the slow family.
	Slow Family `json:"slow"`
	// SamePort is true for a pair on one port number (0x14, 0x16).
	SamePort bool `json:"same_port"`
	// IPv4Port is the pair's IPv4 port, the one a 0xE0 request names.
	IPv4Port uint16 `json:"ipv4_port"`
	// Replied is when the server replied with the pair's ports; MS counts
	// from it.
	Replied time.Time `json:"replied"`
	// FastMS and SlowMS are when each side was to complete handshakes, in
	// ms after the reply.
	FastMS float64 `json:"fast_ms"`
	SlowMS float64 `json:"slow_ms"`
	// Closed is when the pair closed, in ms after the reply.
	ClosedMS float64 `json:"closed_ms"`
	// Marks are the pair's events in time order.
	Marks []Mark `json:"marks"`
}

// Summary counts a run's judged pairs.
type Summary struct {
	// Pairs is how many pairs were judged.
	Pairs int `json:"pairs"`
	// Verdicts counts the pairs per verdict; every verdict is present.
	Verdicts map[Conformance]int `json:"verdicts"`
	// Deviations counts the pairs naming each deviation; every deviation
	// is present.
	Deviations map[Deviation]int `json:"deviations"`
}

// Report is a run's judged pairs: the counts, and the first pairs' timelines.
type Report struct {
	Summary Summary `json:"summary"`
	// Pairs are the judged pairs in the order they closed, at most the
	// first 2000.
	Pairs []PairReport `json:"pairs"`
	// Omitted counts the pairs judged but left out of Pairs.
	Omitted int `json:"omitted"`
}

func newSummary() Summary {
	s := Summary{Verdicts: map[Conformance]int{}, Deviations: map[Deviation]int{}}
	for _, c := range []Conformance{Conforms, Deviates, Unknown} {
		s.Verdicts[c] = 0
	}
	for _, d := range deviationOrder {
		s.Deviations[d] = 0
	}
	return s
}

func (s *Summary) add(j Judgement) {
	s.Pairs++
	s.Verdicts[j.Verdict]++
	for _, d := range j.Deviations {
		s.Deviations[d]++
	}
}

// logArgs are the summary as slog arguments: pairs, the count of each
// verdict, and a group "deviations" with the count of each deviation.
func (s Summary) logArgs() []any {
	args := []any{"pairs", s.Pairs}
	for _, c := range []Conformance{Conforms, Deviates, Unknown} {
		args = append(args, string(c), s.Verdicts[c])
	}
	var devs []any
	for _, d := range deviationOrder {
		devs = append(devs, string(d), s.Deviations[d])
	}
	return append(args, slog.Group("deviations", devs...))
}

// Report returns the pairs judged so far and their counts. After Shutdown
// it holds every pair the server handed out.
func (s *Server) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	// s.summary holds every verdict and deviation (newSummary): copy it.
	sum := Summary{Pairs: s.summary.Pairs, Verdicts: maps.Clone(s.summary.Verdicts), Deviations: maps.Clone(s.summary.Deviations)}
	return Report{Summary: sum, Pairs: append([]PairReport(nil), s.reported...), Omitted: s.omitted}
}

// judged records p's judgement: for the 0xE0 request, the counts and the
// report.
func (s *Server) judged(p *pair, j Judgement, rep PairReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	port := p.sides[0].port()
	if s.byPort[port] == p {
		delete(s.byPort, port)
		s.judgedOn[port] = j
	}
	s.summary.add(j)
	if len(s.reported) < maxReported {
		s.reported = append(s.reported, rep)
	} else {
		s.omitted++
	}
}

// judgementOf answers a 0xE0 request for IPv4 port port: whether a pair
// was handed out on it, and the judgement of the latest one once it has
// closed (not while another is open on the port).
func (s *Server) judgementOf(port uint16) (j Judgement, known, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, open := s.byPort[port]; open {
		return Judgement{}, true, false
	}
	j, ok := s.judgedOn[port]
	return j, ok, ok
}

// optionalMS is an attempt delay for the log: a number, or null (text
// "none").
type optionalMS struct{ ms *float64 }

func (o optionalMS) MarshalJSON() ([]byte, error) {
	if o.ms == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.ms)
}

func (o optionalMS) MarshalText() ([]byte, error) {
	if o.ms == nil {
		return []byte("none"), nil
	}
	return []byte(strconv.FormatFloat(*o.ms, 'f', 2, 64)), nil
}

// judge judges the pair once it has closed (both listeners are, so every
// event has come), records the judgement, and logs it.
func (p *pair) judge(why string, closed time.Time) {
	o := observation{pair: p.id, slow: p.req.Slow, closedWhy: why, samePort: p.samePort}
	p.mu.Lock()
	o.winner, o.won = p.winner, p.wonAt
	replied, acceptedAt, winnerClient := p.replied, p.acceptedAt, p.winnerClient
	p.mu.Unlock()
	if replied.IsZero() {
		replied = p.startedAt()
	}
	rep := PairReport{
		Slow: Family(p.req.Slow), SamePort: p.samePort, IPv4Port: p.sides[0].port(), Replied: replied,
		ClosedMS: millis(closed.Sub(replied)),
	}
	for i, sd := range p.sides {
		sd.mu.Lock()
		o.firstSYN[i] = sd.firstSYN
		if sd.faulted {
			o.blind = "the capture failed on " + familyName(sd.family)
		}
		for _, m := range sd.marks {
			m.MS = millis(m.At.Sub(replied))
			rep.Marks = append(rep.Marks, m)
		}
		sd.mu.Unlock()
		if st := sd.ln.Strategy(); st != listener.Replay && o.blind == "" {
			o.blind = "strategy " + st.String() + " does not capture SYNs"
		}
		ms := millis(sd.want.Sub(replied))
		if sd.family == p.req.Slow {
			rep.SlowMS = ms
		} else {
			rep.FastMS = ms
			o.fastWant = sd.want
		}
	}
	if o.winner != 0 {
		rep.Marks = append(rep.Marks, Mark{Family: Family(o.winner), Kind: "connected", Client: winnerClient, At: acceptedAt, MS: millis(acceptedAt.Sub(replied))})
	}
	sortMarks(rep.Marks)
	j := judge(o)
	rep.Judgement = j
	p.s.judged(p, j, rep)
	p.inOrder(func() {
		p.log.Info("pair judged", "first", j.First, "attempt_delay_ms", optionalMS{j.AttemptDelayMS},
			"winner", j.Winner, "verdict", string(j.Verdict), "deviations", j.Deviations, "why", j.Why)
	})
}

// mark records an event of sd for the timeline and the judgement; sd.mu
// is held.
func (sd *side) markLocked(e listener.Event) {
	kind := ""
	switch e.Kind {
	case listener.SYNSeen:
		kind = "syn"
		if e.Retransmit {
			kind = "retransmit"
		} else if sd.firstSYN.IsZero() || e.Time.Before(sd.firstSYN) {
			sd.firstSYN = e.Time
		}
	case listener.Released:
		kind = "release"
	case listener.SYNACKSent:
		kind = "synack"
	default:
		return
	}
	m := Mark{Family: Family(sd.family), Kind: kind, At: e.Time}
	if e.Client.IsValid() {
		m.Client = e.Client.String()
	}
	if len(sd.marks) < maxMarks {
		sd.marks = append(sd.marks, m)
	}
}

// maxMarks bounds the marks a side keeps: a client that floods a pair with
// SYNs must not grow the server without bound.
const maxMarks = 64

// sortMarks puts marks in time order; the two sides' are interleaved.
func sortMarks(ms []Mark) {
	slices.SortStableFunc(ms, func(a, b Mark) int { return cmp.Compare(a.At.UnixNano(), b.At.UnixNano()) })
}
