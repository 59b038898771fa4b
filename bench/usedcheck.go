package main

import (
	"errors"
	"fmt"
	"strings"
)

// lostPairs fails, naming the row and what it lost, when a row timed as it
// is used (section 0, the levers, the suite) lost a pair: a client error, a
// pair not replied to or with no winner, a winner that tcpdump or the
// server's log did not show, a pair not timed, or a pair not won by its
// fast family. The bench then exits non-zero, which makes CI's short run
// the bench pipeline's end-to-end check.
func lostPairs(r *Results) error {
	var errs []error
	for _, u := range usedWholeRows(r) {
		if err := usedLoss(u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// usedLoss says what row u lost, or nil when every pair was timed and won
// by its fast family.
func usedLoss(u UsedRow) error {
	if u.Pairs > 0 && u.ClientErrors == 0 && u.Release.N == u.Pairs && u.FastWon == u.Winners {
		return nil
	}
	var lost []string
	add := func(n int, what string) {
		if n > 0 {
			lost = append(lost, fmt.Sprintf("%d %s", n, what))
		}
	}
	if u.Pairs == 0 {
		lost = append(lost, "no pair asked for")
	}
	add(u.ClientErrors, "client errors "+quoteAll(u.ErrorSample))
	add(u.Pairs-u.Replied, "not replied to")
	add(u.Replied-u.Winners, "with no winner")
	add(u.Unmatched, "winners not matched in tcpdump or the server's log")
	add(u.SYNAfter, "winners whose SYN came after the instant (not timed)")
	add(u.Winners-u.FastWon, "not won by their fast family")
	return fmt.Errorf("as used, row %s (%s): %d of %d pairs timed; %s", u.Name, u.Label, u.Release.N, u.Pairs, strings.Join(lost, ", "))
}
