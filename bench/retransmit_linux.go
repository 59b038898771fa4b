package main

// Strategy Retransmit: clients held at once, released by their own
// retransmitted SYN.

import (
	"fmt"

	"github.com/synhold/synhold/listener"
)

// retransmitRow holds n clients at once with strategy Retransmit: each
// completes at its first SYN retransmission after the instant, about 1 s
// after its SYN.
func retransmitRow(sn *sniffer, n int) (ReleaseRow, error) {
	ts, err := concurrentTrials(n, func(i int) (trial, error) { return heldTrial(sn, listener.Retransmit, i) })
	if err != nil {
		return ReleaseRow{}, fmt.Errorf("retransmit: %w", err)
	}
	r := rowOf("retransmit", "Retransmit (no privilege)", "retransmit", "", 0, ts)
	r.Note = fmt.Sprintf("%d clients at once; completes at the client's SYN retransmission", n)
	return r, nil
}
