package happyeyeballs

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestJudge judges made-up observations, one per behaviour, and checks
// every field of the judgement.
func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	fastWant := at(1000) // slow IPv4 unless said otherwise: IPv6 is fast
	delay := func(ms float64) *float64 { return &ms }
	for _, tc := range []struct {
		name   string
		o      observation
		first  Family
		delay  *float64
		winner Family
		want   Conformance
		devs   []Deviation
		why    []string // words the sentence must hold
	}{
		{"IPv6 first, 250 ms", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(250.004), at(0)}, winner: 6, won: at(1000)},
			6, delay(250), 6, Conforms, nil, []string{"tried IPv6 first", "started IPv4 250.00 ms later", ", and connected over IPv6 (the fast side)."}},
		{"IPv4 first, 250.5 ms", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(0.18), at(250.68)}, winner: 6, won: at(1000)},
			4, delay(250.5), 6, Deviates, []Deviation{IPv4First}, []string{"IPv4 first although IPv6 was offered", "250.50 ms later, and connected"}},
		{"both at once", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(0.05), at(0)}, winner: 6, won: at(1000)},
			6, delay(0.05), 6, Deviates, []Deviation{NoAttemptDelay}, []string{"(both at once; RFC 8305 never allows less than 10 ms, and recommends 250 ms)"}},
		{"9.99 ms", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(9.99), at(0)}, winner: 6, won: at(1000)},
			6, delay(9.99), 6, Deviates, []Deviation{NoAttemptDelay}, nil},
		{"10 ms", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(10), at(0)}, winner: 6, won: at(1000)},
			6, delay(10), 6, Deviates, []Deviation{ShortAttemptDelay}, nil},
		{"50 ms", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(50), at(0)}, winner: 6, won: at(1000)},
			6, delay(50), 6, Deviates, []Deviation{ShortAttemptDelay}, []string{"later (RFC 8305 recommends at least 100 ms"}},
		{"100 ms", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(100), at(0)}, winner: 6, won: at(1000)},
			6, delay(100), 6, Conforms, nil, nil},
		{"2 s", observation{slow: 6, fastWant: at(3000), firstSYN: [2]time.Time{at(2000), at(0)}, winner: 4, won: at(3000)},
			6, delay(2000), 4, Conforms, nil, nil},
		{"2.5 s", observation{slow: 6, fastWant: at(1000), firstSYN: [2]time.Time{at(2500), at(0)}, winner: 4, won: at(2500.1)},
			6, delay(2500), 4, Deviates, []Deviation{LongAttemptDelay}, []string{"later (RFC 8305 recommends at most 2 s)"}},
		{"one family, the fast one", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{{}, at(0)}, winner: 6, won: at(1000), samePort: true},
			6, nil, 6, Deviates, []Deviation{SingleFamily}, []string{"never tried IPv4, and connected"}},
		{"one family, two port numbers", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{{}, at(0)}, winner: 6, won: at(1000)},
			6, nil, 6, Deviates, []Deviation{SingleFamily}, []string{"never tried IPv4 (a client that dials one name and port reaches one side", "0x14 or 0x16"}},
		{"one family, the slow one", observation{slow: 6, fastWant: fastWant, firstSYN: [2]time.Time{{}, at(0)}, winner: 6, won: at(2000)},
			6, nil, 6, Deviates, []Deviation{SingleFamily, SlowWinner}, []string{"the slow side", "did not race"}},
		{"IPv4 only", observation{slow: 6, fastWant: fastWant, firstSYN: [2]time.Time{at(0), {}}, winner: 4, won: at(1000)},
			4, nil, 4, Deviates, []Deviation{IPv4First, SingleFamily}, nil},
		{"abandons the fast side (Node 20)", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(250), at(0)}, winner: 4, won: at(2000)},
			6, delay(250), 4, Deviates, []Deviation{SlowWinner}, []string{"1000.00 ms after IPv6 could have completed"}},
		{"slow side wins a close race", observation{slow: 4, fastWant: at(1000), firstSYN: [2]time.Time{at(0), at(1999.5)}, winner: 4, won: at(2000)},
			4, delay(1999.5), 4, Deviates, []Deviation{IPv4First}, nil},
		{"fast side tried late, answered at once, not used", observation{slow: 4, fastWant: at(1000), firstSYN: [2]time.Time{at(0), at(1900)}, winner: 4, won: at(2000)},
			4, delay(1900), 4, Deviates, []Deviation{IPv4First, SlowWinner}, []string{"100.00 ms after IPv6 could have completed"}},
		{"slow winner within a millisecond", observation{slow: 4, fastWant: at(1000), firstSYN: [2]time.Time{at(0), at(250)}, winner: 4, won: at(1000.5)},
			4, delay(250), 4, Deviates, []Deviation{IPv4First}, nil},
		{"nobody connected", observation{slow: 4, fastWant: fastWant, firstSYN: [2]time.Time{at(0), at(250)}, closedWhy: "timeout: nobody connected"},
			4, delay(250), 0, Deviates, []Deviation{IPv4First}, []string{"and connected over neither family before the pair closed (timeout: nobody connected)."}},
		{"no SYN", observation{slow: 4, fastWant: fastWant, closedWhy: "timeout: nobody connected"},
			0, nil, 0, Unknown, nil, []string{"No SYN reached the pair", "timeout"}},
		{"blind", observation{slow: 4, fastWant: fastWant, blind: "strategy retransmit does not capture SYNs", winner: 6, won: at(1000)},
			0, nil, 6, Unknown, nil, []string{"could not see every SYN (strategy retransmit", "connected over IPv6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.pair = 7
			j := judge(tc.o)
			if j.Pair != 7 || j.First != tc.first || j.Winner != tc.winner || j.Verdict != tc.want {
				t.Errorf("pair %d first %v winner %v verdict %v, want 7 %v %v %v", j.Pair, j.First, j.Winner, j.Verdict, tc.first, tc.winner, tc.want)
			}
			switch {
			case (j.AttemptDelayMS == nil) != (tc.delay == nil):
				t.Errorf("attempt delay %v, want %v", j.AttemptDelayMS, tc.delay)
			case tc.delay != nil && *j.AttemptDelayMS != *tc.delay:
				t.Errorf("attempt delay %v ms, want %v", *j.AttemptDelayMS, *tc.delay)
			}
			if j.Deviations == nil || !slices.Equal(j.Deviations, append([]Deviation{}, tc.devs...)) {
				t.Errorf("deviations %#v, want %v", j.Deviations, tc.devs)
			}
			for _, w := range tc.why {
				if !strings.Contains(j.Why, w) {
					t.Errorf("why %q lacks %q", j.Why, w)
				}
			}
			if strings.Count(j.Why, ". ") > 0 || !strings.HasSuffix(j.Why, ".") {
				t.Errorf("why %q is not one sentence", j.Why)
			}
			if strings.Contains(j.Why, ": "+string(j.Verdict)) {
				t.Errorf("why %q repeats the verdict that stands beside it", j.Why)
			}
		})
	}
}

// TestJudgementJSON: exactly the fields scripts rely on, nulls where
// nothing was seen, an empty array rather than null, and back again.
func TestJudgementJSON(t *testing.T) {
	ms := 250.5
	for _, tc := range []struct {
		j    Judgement
		want string
	}{
		{Judgement{Pair: 3, First: 4, AttemptDelayMS: &ms, Winner: 6, Verdict: Deviates, Deviations: []Deviation{IPv4First}, Why: "w."},
			`{"pair":3,"first":"ipv4","attempt_delay_ms":250.5,"winner":"ipv6","verdict":"deviates","deviations":["IPv4First"],"why":"w."}`},
		{judge(observation{pair: 4, closedWhy: "timeout"}),
			`{"pair":4,"first":null,"attempt_delay_ms":null,"winner":null,"verdict":"unknown","deviations":[],"why":"No SYN reached the pair before it closed (timeout), so there is nothing to judge."}`},
	} {
		b, err := json.Marshal(tc.j)
		if err != nil || string(b) != tc.want {
			t.Errorf("JSON %s, %v\nwant %s", b, err, tc.want)
		}
		back, err := decodeJudgement(b)
		if err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(back); string(b2) != tc.want {
			t.Errorf("decoded and encoded again: %s, want %s", b2, tc.want)
		}
	}
	if _, err := decodeJudgement([]byte(`{"pair":1,"first":null,"winner":null,"verdict":"unknown","deviations":[],"why":""}`)); err == nil ||
		!strings.Contains(err.Error(), "attempt_delay_ms") {
		t.Errorf("a judgement without attempt_delay_ms: %v, want an error naming it", err)
	}
	var f Family
	if err := json.Unmarshal([]byte(`"ipv5"`), &f); err == nil {
		t.Error(`family "ipv5" decoded without an error`)
	}
}

// TestDeviationsMean: every deviation has a meaning in RFC 8305's words,
// and the summary counts each.
func TestDeviationsMean(t *testing.T) {
	for _, d := range deviationOrder {
		if m := d.Meaning(); !strings.Contains(m, "RFC 8305 section") || !strings.Contains(m, `"`) {
			t.Errorf("%s: meaning %q quotes no RFC 8305 section", d, m)
		}
	}
	if m := Deviation("Bogus").Meaning(); m != "Unknown deviation." {
		t.Errorf("Bogus means %q", m)
	}
	s := newSummary()
	s.add(Judgement{Verdict: Deviates, Deviations: []Deviation{IPv4First, SlowWinner}})
	s.add(Judgement{Verdict: Conforms, Deviations: []Deviation{}})
	if s.Pairs != 2 || s.Verdicts[Deviates] != 1 || s.Verdicts[Conforms] != 1 || s.Verdicts[Unknown] != 0 ||
		s.Deviations[IPv4First] != 1 || s.Deviations[SlowWinner] != 1 || len(s.Deviations) != len(deviationOrder) {
		t.Errorf("summary %+v", s)
	}
}
