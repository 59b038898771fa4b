package backoff

import (
	"math"
	"time"
)

// defaultReferenceMaxMs is the cap the reference server uses when the client
// asks for max_reconnect_backoff_ms = 0.
const defaultReferenceMaxMs = 120 * 1000

// Reference returns the verdict that gRPC's reference interop server
// (ReconnectServiceImpl::Verify in test/cpp/interop/reconnect_interop_server.cc)
// gives for these gaps, reproduced operation by operation:
//
//   - each gap is truncated to whole milliseconds (gpr_time_to_millis, which
//     rounds towards minus infinity and saturates at about ±24.8 days);
//   - the expected gap starts at 1000 ms, is multiplied by 1.6 after every gap
//     and then capped at the maximum; the first gap is compared with 1000 ms
//     even when the maximum is smaller;
//   - a gap passes when it lies in [expected·0.8 - 100, expected·1.2 + 100] ms;
//   - the maximum is maxBackoff in whole milliseconds as the proto's int32
//     max_reconnect_backoff_ms, and 0 there means 120 000 ms;
//   - the verdict is true when every gap passes, so no gaps at all (fewer than
//     two attempts) pass: the reference server does not notice a client that
//     never retried.
//
// The reference server records accept(2) times; Reference judges gaps from
// any source. Its initial backoff, multiplier, jitter and tolerance are fixed;
// Policy.Range generalises the same rule.
func Reference(maxBackoff time.Duration, gaps []time.Duration) bool {
	maxMs := int32(maxBackoff.Milliseconds())
	if maxMs == 0 {
		maxMs = defaultReferenceMaxMs
	}
	r := rule{
		initial:    1000,
		multiplier: 1.6,
		jitter:     0.2,
		max:        float64(maxMs),
		hasMax:     true,
		tolerance:  100,
	}
	l := r.ladder()
	passed := true
	for _, g := range gaps {
		if r.verdict(g, l.next()) != OK {
			passed = false
		}
	}
	return passed
}

// referenceMillis converts a gap to milliseconds as gpr_time_to_millis does
// with the difference of two gpr_timespecs: whole seconds rounded down, plus
// whole milliseconds of the non-negative nanosecond part, saturating near
// ±2^31 ms. The reference server reports these values as backoff_ms.
func referenceMillis(d time.Duration) int32 {
	sec := int64(d / time.Second)
	nsec := int64(d % time.Second)
	if nsec < 0 {
		sec--
		nsec += int64(time.Second)
	}
	const limit = 2147483
	switch {
	case sec >= limit:
		if sec == limit && nsec < 648*int64(time.Millisecond) {
			return int32(limit*1000 + nsec/int64(time.Millisecond))
		}
		return math.MaxInt32
	case sec <= -limit:
		return -math.MaxInt32
	}
	return int32(sec*1000 + nsec/int64(time.Millisecond))
}
