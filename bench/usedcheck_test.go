package main

import (
	"strings"
	"testing"

	"github.com/synhold/synhold/bench/internal/stats"
)

// whole is an as-used row of n pairs, every one timed and won by its fast
// family.
func whole(name string, n int) UsedRow {
	return UsedRow{Name: name, Label: "label of " + name, Pairs: n, Replied: n, Winners: n, FastWon: n,
		Release: stats.Summary{N: n, P50US: 30, P99US: 90}}
}

func TestLostPairsNamesTheRowAndTheLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		r     Results
		wants []string // in the error; none: no error
	}{
		{"every pair timed", Results{AsUsed: []UsedRow{whole("used/idle", 4), whole("used/busy4", 4)},
			Levers: []UsedRow{whole("lever/no-fifo/idle", 2)}, Suite: []UsedRow{whole("suite/8", 8)}}, nil},
		{"a dial mode's row is its case's", Results{AsUsed: []UsedRow{whole("used/idle", 4),
			{Name: "used/idle/both", Mode: modeBoth, Pairs: 2, Winners: 2, FastWon: 2, Release: stats.Summary{N: 1}}}}, nil},
		{"client errors", Results{AsUsed: []UsedRow{func() UsedRow {
			u := whole("used/idle", 4)
			u.ClientErrors, u.ErrorSample, u.Winners, u.FastWon, u.Release.N = 1, []string{"connection refused"}, 3, 3, 3
			return u
		}()}}, []string{"used/idle", "3 of 4 pairs timed", `1 client errors ("connection refused")`, "1 with no winner"}},
		{"unmatched", Results{Levers: []UsedRow{func() UsedRow {
			u := whole("lever/no-early/idle", 2)
			u.Unmatched, u.Release.N = 1, 1
			return u
		}()}}, []string{"lever/no-early/idle", "1 of 2 pairs timed", "1 winners not matched in tcpdump or the server's log"}},
		{"SYN after the instant", Results{Suite: []UsedRow{func() UsedRow {
			u := whole("suite/8", 8)
			u.SYNAfter, u.Release.N = 2, 6
			return u
		}()}}, []string{"suite/8", "6 of 8 pairs timed", "2 winners whose SYN came after the instant"}},
		{"slow family won", Results{AsUsed: []UsedRow{func() UsedRow {
			u := whole("used/busy4", 4)
			u.FastWon = 3
			return u
		}()}}, []string{"used/busy4", "4 of 4 pairs timed", "1 not won by their fast family"}},
		{"no reply", Results{AsUsed: []UsedRow{func() UsedRow {
			u := whole("used/idle", 4)
			u.Replied, u.Winners, u.FastWon, u.Release.N = 2, 2, 2, 2
			return u
		}()}}, []string{"used/idle", "2 not replied to"}},
		{"no pairs", Results{AsUsed: []UsedRow{{Name: "used/idle"}}}, []string{"used/idle", "no pair asked for"}},
		{"two rows", Results{AsUsed: []UsedRow{func() UsedRow {
			u := whole("used/idle", 4)
			u.FastWon = 3
			return u
		}(), whole("used/busy4", 4)}, Suite: []UsedRow{{Name: "suite/8", Pairs: 8}}}, []string{"used/idle", "suite/8"}},
	} {
		err := lostPairs(&tc.r)
		if len(tc.wants) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want no loss", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, want one naming %q", tc.name, tc.wants)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "used/busy4") && tc.name == "two rows" {
			t.Errorf("%s: %q names a row that lost nothing", tc.name, err)
		}
	}
}

// TestHeadlineFailsOnALostPair writes the headline of a run whose row lost
// a pair: the outputs are written, and the error names the row.
func TestHeadlineFailsOnALostPair(t *testing.T) {
	r := sampleResults()
	r.AsUsed = []UsedRow{whole("used/idle", 4), whole("used/busy4", 4)}
	r.AsUsed[1].Unmatched, r.AsUsed[1].Release.N = 1, 3
	r.Levers, r.Suite = nil, nil
	run := sampleRun()
	run.Options.Out = t.TempDir()
	md, _, err := writeHeadline(r, run)
	if err == nil || !strings.Contains(err.Error(), "used/busy4") || strings.Contains(err.Error(), "used/idle") {
		t.Errorf("writeHeadline: %v, want an error naming used/busy4 alone", err)
	}
	if !strings.Contains(md, "## 0.") {
		t.Error("no report written for a run that lost a pair")
	}
	r.AsUsed[1] = whole("used/busy4", 4)
	if _, _, err := writeHeadline(r, run); err != nil {
		t.Errorf("writeHeadline of a whole run: %v", err)
	}
}
