package happyeyeballs

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Conformance is a Judgement's verdict on a client's connection attempts.
type Conformance string

// The verdicts.
const (
	// Conforms: the client did what RFC 8305 asks, as far as the server saw.
	Conforms Conformance = "conforms"
	// Deviates: the client departed from RFC 8305; Deviations say how.
	Deviates Conformance = "deviates"
	// Unknown: the server could not see the client's SYNs (its strategy
	// does not capture them, or the capture failed), or none came.
	Unknown Conformance = "unknown"
)

// Deviation names a way in which a client's connection attempts depart
// from RFC 8305 (sections 4 and 5).
type Deviation string

// The deviations a Judgement names.
const (
	// IPv4First: both families were available and the client started with
	// IPv4.
	IPv4First Deviation = "IPv4First"
	// NoAttemptDelay: the second family's first SYN came less than 10 ms
	// after the first family's (both at once).
	NoAttemptDelay Deviation = "NoAttemptDelay"
	// ShortAttemptDelay: the second family came 10 to 100 ms after the first.
	ShortAttemptDelay Deviation = "ShortAttemptDelay"
	// LongAttemptDelay: the second family came more than 2 s after the first.
	LongAttemptDelay Deviation = "LongAttemptDelay"
	// SingleFamily: only one family was tried before the pair closed.
	SingleFamily Deviation = "SingleFamily"
	// SlowWinner: the client connected over the slow side although the
	// fast side would have completed first had it been tried within the
	// delay (a client that does not race its attempts).
	SlowWinner Deviation = "SlowWinner"
)

// deviationOrder is the order in which deviations are listed and counted.
var deviationOrder = []Deviation{IPv4First, NoAttemptDelay, ShortAttemptDelay, LongAttemptDelay, SingleFamily, SlowWinner}

// Deviations returns every deviation a Judgement can name, in the order it
// names them.
func Deviations() []Deviation { return slices.Clone(deviationOrder) }

// The Connection Attempt Delay's bounds, from RFC 8305 section 5.
const (
	// RecommendedAttemptDelay is the delay RFC 8305 recommends between the
	// first attempts of the two families.
	RecommendedAttemptDelay = 250 * time.Millisecond
	minAttemptDelay         = 10 * time.Millisecond  // "MUST NOT be ... lower than 10 milliseconds"
	shortAttemptDelay       = 100 * time.Millisecond // "SHOULD NOT be ... lower than 100 milliseconds"
	maxAttemptDelay         = 2 * time.Second        // "SHOULD NOT be ... higher than 2 seconds"
)

// Meaning says what d means, in RFC 8305's words.
func (d Deviation) Meaning() string {
	switch d {
	case IPv4First:
		return `RFC 8305 section 4: "the client MUST sort the addresses received up to this point using Destination Address Selection ([RFC6724], Section 6)", whose default policy puts ::1 before 127.0.0.1; this client started with IPv4.`
	case NoAttemptDelay:
		return `RFC 8305 section 5: "connection attempts SHOULD NOT be made simultaneously" and "a subsequent connection MUST NOT be started within 10 milliseconds of the previous attempt".`
	case ShortAttemptDelay:
		return `RFC 8305 section 5: the Connection Attempt Delay's "recommended minimum value is 100 milliseconds"; "One recommended value for a default delay is 250 milliseconds."`
	case LongAttemptDelay:
		return `RFC 8305 section 5: the Connection Attempt Delay "SHOULD have an upper bound ... The current recommended value is 2 seconds."`
	case SingleFamily:
		return `RFC 8305 section 5: "one connection attempt to a single address is started first, followed by the others in the list, one at a time"; this client tried one family only, so a host whose first family is broken stays unreachable.`
	case SlowWinner:
		return `RFC 8305 section 5: "Starting a new connection attempt does not affect previous attempts, as multiple connection attempts may occur in parallel"; this client connected over the slow side although the fast side would have completed first: it abandons an attempt when it starts the next, or waits for one family.`
	}
	return "Unknown deviation."
}

// Judgement is the server's verdict on what a client did on one pair,
// judged against RFC 8305 from the SYNs the server captured. Its JSON is
// the "pair judged" log line's fields, and the answer to a 0xE0 request.
type Judgement struct {
	// Pair is the pair's number, as in every log line of the pair.
	Pair uint64 `json:"pair"`
	// First is the family whose first SYN came first, 4 or 6; 0 (JSON
	// null) when no SYN was seen.
	First Family `json:"first"`
	// AttemptDelayMS is the second family's first SYN less the first
	// family's first SYN, in ms to 0.01 ms; nil (null) when only one
	// family was tried. A retransmitted SYN is not a new attempt.
	AttemptDelayMS *float64 `json:"attempt_delay_ms"`
	// Winner is the family the client connected over; 0 (null) if none.
	Winner Family `json:"winner"`
	// Verdict is conforms, deviates or unknown.
	Verdict Conformance `json:"verdict"`
	// Deviations name how the client departed from RFC 8305; empty (never
	// null) when it conforms.
	Deviations []Deviation `json:"deviations"`
	// Why says it all in one sentence.
	Why string `json:"why"`
}

// Has reports whether j names deviation d.
func (j Judgement) Has(d Deviation) bool { return slices.Contains(j.Deviations, d) }

// Family is an address family, 4 or 6; 0 is none. Its JSON and text are
// "ipv4", "ipv6", or null (text "none").
type Family int

// String returns "ipv4", "ipv6" or "none".
func (f Family) String() string {
	switch f {
	case 4, 6:
		return familyName(int(f))
	}
	return "none"
}

// MarshalText implements encoding.TextMarshaler.
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// MarshalJSON implements json.Marshaler: null for no family.
func (f Family) MarshalJSON() ([]byte, error) {
	if f != 4 && f != 6 {
		return []byte("null"), nil
	}
	return []byte(`"` + f.String() + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Family) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "null":
		*f = 0
	case `"ipv4"`:
		*f = 4
	case `"ipv6"`:
		*f = 6
	default:
		return fmt.Errorf("happyeyeballs: family %s: want \"ipv4\", \"ipv6\" or null", b)
	}
	return nil
}

// observation is what the server saw of a client on one pair, the input
// of judge.
type observation struct {
	pair      uint64
	slow      int          // the slow family, 4 or 6
	fastWant  time.Time    // when the fast side's handshakes complete
	blind     string       // why SYNs may have gone unseen; "" if they were all seen
	firstSYN  [2]time.Time // per family (IPv4, IPv6), the first SYN of a new connection; zero if none
	winner    int          // the family connected over, 0 if none
	won       time.Time    // when the winner's handshake completed (its SYN-ACK, else its accept)
	closedWhy string       // why the pair closed
	samePort  bool         // both sides on one port number
}

func famIndex(family int) int {
	if family == 4 {
		return 0
	}
	return 1
}

// judge judges o against RFC 8305. It is pure: the verdicts can be tested
// without sockets.
func judge(o observation) Judgement {
	j := Judgement{Pair: o.pair, Winner: Family(o.winner), Deviations: []Deviation{}}
	t4, t6 := o.firstSYN[0], o.firstSYN[1]
	var first, second int
	switch {
	case !t4.IsZero() && (t6.IsZero() || t4.Before(t6)):
		first, second = 4, 6
	case !t6.IsZero():
		first, second = 6, 4
	}
	if first != 0 {
		j.First = Family(first)
	}
	t1, t2 := o.firstSYN[famIndex(first)], o.firstSYN[famIndex(second)]
	if first == 0 {
		t1, t2 = time.Time{}, time.Time{}
	}
	var delay time.Duration
	if !t2.IsZero() {
		delay = t2.Sub(t1)
		ms := math.Round(float64(delay)/float64(10*time.Microsecond)) / 100
		j.AttemptDelayMS = &ms
	}
	won := ""
	if o.winner != 0 {
		side := "fast"
		if o.winner == o.slow {
			side = "slow"
		}
		won = fmt.Sprintf("connected over %s (the %s side)", ipName(o.winner), side)
	} else {
		won = "connected over neither family before the pair closed (" + o.closedWhy + ")"
	}
	switch {
	case o.blind != "":
		j.Verdict = Unknown
		j.Why = fmt.Sprintf("The server could not see every SYN (%s), so it cannot judge; the client %s.", o.blind, won)
		return j
	case first == 0:
		j.Verdict = Unknown
		j.Why = fmt.Sprintf("No SYN reached the pair before it closed (%s), so there is nothing to judge.", o.closedWhy)
		return j
	}
	var says []string
	if first == 4 {
		j.Deviations = append(j.Deviations, IPv4First)
		says = append(says, "tried IPv4 first although IPv6 was offered")
	} else {
		says = append(says, "tried IPv6 first")
	}
	if t2.IsZero() {
		j.Deviations = append(j.Deviations, SingleFamily)
		never := fmt.Sprintf("never tried %s", ipName(10-first))
		if !o.samePort {
			never += " (a client that dials one name and port reaches one side of a pair with two port numbers: ask for 0x14 or 0x16)"
		}
		says = append(says, never)
	} else {
		d := fmt.Sprintf("started %s %.2f ms later", ipName(second), *j.AttemptDelayMS)
		switch {
		case delay < minAttemptDelay:
			j.Deviations = append(j.Deviations, NoAttemptDelay)
			d += " (both at once; RFC 8305 never allows less than 10 ms, and recommends 250 ms)"
		case delay < shortAttemptDelay:
			j.Deviations = append(j.Deviations, ShortAttemptDelay)
			d += " (RFC 8305 recommends at least 100 ms, and 250 ms by default)"
		case delay > maxAttemptDelay:
			j.Deviations = append(j.Deviations, LongAttemptDelay)
			d += " (RFC 8305 recommends at most 2 s)"
		}
		says = append(says, d)
	}
	if sw, ok := slowWinner(o, t1); ok {
		j.Deviations = append(j.Deviations, SlowWinner)
		won += sw
	}
	says = append(says, won)
	j.Verdict = Conforms
	if len(j.Deviations) > 0 {
		j.Verdict = Deviates
	}
	// The verdict stands beside the sentence wherever it is shown (its own
	// field, the row's label), so the sentence says what happened only.
	j.Why = fmt.Sprintf("The client %s, and %s.", strings.Join(says[:len(says)-1], ", "), says[len(says)-1])
	return j
}

// slowWinner checks for SlowWinner: the winner is the slow family, and the
// fast side, tried when the client tried it (or, if it did not, the
// recommended delay after its first attempt), would have completed before
// the winner did. It returns the words that say so.
func slowWinner(o observation, firstAt time.Time) (string, bool) {
	fast := 10 - o.slow
	if o.winner != o.slow || o.won.IsZero() || o.fastWant.IsZero() {
		return "", false
	}
	tried := o.firstSYN[famIndex(fast)]
	if tried.IsZero() {
		tried = firstAt.Add(RecommendedAttemptDelay)
	}
	could := o.fastWant
	if tried.After(could) {
		could = tried
	}
	// A millisecond of slack: the two sides' times come from one clock,
	// but a release is late by up to a fraction of a millisecond.
	if could.Add(time.Millisecond).After(o.won) {
		return "", false
	}
	return fmt.Sprintf(" %.2f ms after %s could have completed, so it did not race its attempts",
		millis(o.won.Sub(could)), ipName(fast)), true
}

// ipName names a family in sentences: IPv4, IPv6.
func ipName(family int) string { return fmt.Sprintf("IPv%d", family) }
