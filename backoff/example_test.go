package backoff_test

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/synhold/synhold/backoff"
)

func ExampleAnalyze() {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	server := netip.MustParseAddrPort("127.0.0.1:8081")
	var attempts []backoff.Attempt
	var at time.Duration
	for i, gap := range []time.Duration{0, 1000, 1720, 2300, 4400, 6100} {
		at += gap * time.Millisecond
		attempts = append(attempts, backoff.Attempt{
			Time:   start.Add(at),
			Src:    netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+i)),
			Dst:    server,
			ISN:    uint32(1000 * i),
			HasISN: true,
		})
	}
	// The kernel sent the third SYN again after a second, and another host
	// knocked on the port.
	retx := attempts[2]
	retx.Time = retx.Time.Add(time.Second)
	probe := backoff.Attempt{Time: start.Add(1500 * time.Millisecond), Src: netip.MustParseAddrPort("10.0.0.7:5555"), Dst: server}
	attempts = append(attempts, retx, probe)

	a := backoff.Analyze(attempts, backoff.Default(), backoff.Loopback())
	if err := a.WriteText(os.Stdout); err != nil {
		panic(err)
	}
	s, _ := a.Primary()
	fmt.Println("ReconnectInfo:", a.Passed, s.BackoffMs())
	// Output:
	// backoff: PASSED: 1 series, 6 attempts kept, 2 removed
	// policy: initial 1000.0 ms, multiplier 1.6, jitter 0.2, max 120000.0 ms, tolerance 100.0 ms
	// reference server's verdict on the same attempts (as one list, the way it judges them): passed, backoff_ms [1000 1720 2300 4400 6100]
	//
	// series 1: 127.0.0.1:8081, 6 attempts, 5 gaps
	//   gap    at ms  got ms  expected ms      allowed ms  deviation  verdict
	//     0   1000.0  1000.0       1000.0   700.0..1300.0      +0.0%       ok
	//     1   2720.0  1720.0       1600.0  1180.0..2020.0      +7.5%       ok
	//     2   5020.0  2300.0       2560.0  1948.0..3172.0     -10.2%       ok
	//     3   9420.0  4400.0       4096.0  3176.8..5015.2      +7.4%       ok
	//     4  15520.0  6100.0       6553.6  5142.9..7964.3      -6.9%       ok
	//   verdict: passed (reference rule on this address alone: passed)
	//   fitted multiplier: 1.577 ± 0.045 from 5 gaps before the cap (± standard error from the residuals; fitted initial 1022.1 ms)
	//   jitter over 4 gaps: mean -0.5% ± 4.7%, std dev 9.3% ± 3.8% (uniform jitter: 11.5%), min -10.2%, max +7.5%
	//
	// removed attempts:
	//   at 1500.0 ms  10.0.0.7:5555 -> 127.0.0.1:8081  foreign source: source 10.0.0.7:5555 is not the client under test
	//   at 3720.0 ms  127.0.0.1:40002 -> 127.0.0.1:8081  retransmission: same source and ISN 2000 as the SYN 1000.0 ms earlier
	// ReconnectInfo: true [1000 1720 2300 4400 6100]
}

func ExampleReference() {
	gaps := []time.Duration{1000 * time.Millisecond, 1650 * time.Millisecond, 2400 * time.Millisecond}
	fmt.Println(backoff.Reference(0, gaps))
	// A client that never retried passes too, as on the reference server.
	fmt.Println(backoff.Reference(0, nil))
	// Gaps are truncated to whole milliseconds: 1300.9 ms is 1300 ms.
	fmt.Println(backoff.Reference(0, []time.Duration{1300900 * time.Microsecond}))
	fmt.Println(backoff.Reference(0, []time.Duration{1301 * time.Millisecond}))
	// Output:
	// true
	// true
	// true
	// false
}

func ExamplePolicy_Range() {
	p := backoff.Default()
	for _, n := range []int{0, 1, 2, 10, 11} {
		lo, hi := p.Range(n)
		fmt.Printf("gap %d: expected %v, allowed %v..%v\n", n, p.Expected(n).Round(time.Millisecond), lo.Round(time.Millisecond), hi.Round(time.Millisecond))
	}
	// Output:
	// gap 0: expected 1s, allowed 700ms..1.3s
	// gap 1: expected 1.6s, allowed 1.18s..2.02s
	// gap 2: expected 2.56s, allowed 1.948s..3.172s
	// gap 10: expected 1m49.951s, allowed 1m27.861s..2m12.041s
	// gap 11: expected 2m0s, allowed 1m35.9s..2m24.1s
}
