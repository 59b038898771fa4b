package capture

import (
	"errors"
	"testing"
	"time"
)

// TestWaitStamping checks the wait's loop through its seam: it asks again
// until the kernel stamps on arrival, gives up at its limit, and does not
// wait for what it cannot probe.
func TestWaitStamping(t *testing.T) {
	for _, tc := range []struct {
		name      string
		offFor    int // probes that find stamping off (-1: all)
		err       error
		limit     time.Duration
		want      bool
		wantCalls int // -1: more than one
	}{
		{"on at once", 0, nil, time.Second, true, 1},
		{"on at the fourth probe", 3, nil, time.Second, true, 4},
		{"never on", -1, nil, 5 * time.Millisecond, false, -1},
		{"cannot probe", 0, errors.New("network is unreachable"), time.Second, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			old := stampedOnArrival
			defer func() { stampedOnArrival = old }()
			stampedOnArrival = func() (bool, error) {
				calls++
				return tc.offFor >= 0 && calls > tc.offFor, tc.err
			}
			if got := waitStamping(tc.limit); got != tc.want {
				t.Errorf("waitStamping = %v, want %v", got, tc.want)
			}
			if tc.wantCalls >= 0 && calls != tc.wantCalls {
				t.Errorf("%d probes, want %d", calls, tc.wantCalls)
			}
			if tc.wantCalls < 0 && calls < 2 {
				t.Errorf("%d probes before giving up, want it to ask again until the limit", calls)
			}
		})
	}
}

// TestOpenReturnsWithStampingOn: once Open has returned, the kernel stamps
// packets as they arrive. Where the capture's SO_TIMESTAMPNS is the host's
// first, it fails if Open returns before the kernel's switch (a SYN read
// then would be stamped at the read); where another socket already asked
// for stamps, stamping was on before and the test shows only that.
func TestOpenReturnsWithStampingOn(t *testing.T) {
	before, err := probeStamping()
	if err != nil {
		t.Fatal(err)
	}
	s := openOrSkip(t, Config{Ifindex: 1})
	defer s.Close()
	on, err := probeStamping()
	if err != nil {
		t.Fatal(err)
	}
	if !on {
		t.Errorf("stamping off after Open returned (it was %v before): a packet read now is stamped late", before)
	}
	if before {
		t.Log("stamping was already on (another socket of the host asked for it)")
	}
}
