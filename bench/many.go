package main

import (
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
)

const (
	// poolDelay is the handshake_delay of the pool rows.
	poolDelay = 200 * time.Millisecond
	// suiteClients is how many test processes of the parallel suite ask
	// for pairs at once.
	suiteClients = 8
	// clockThreadName is the name (comm) the listener gives its release
	// clock's thread.
	clockThreadName = "synhold-clock"
)

// PoolRow is a connection pool warming up through handshake-proxy: n
// connections dialled at once by a client process, Rounds times, through
// a proxy with handshake_delay set, timed by tcpdump.
type PoolRow struct {
	Name string `json:"name"`
	// N is the connections dialled at once per round.
	N      int `json:"n"`
	Rounds int `json:"rounds"`
	// DelayUS is the handshake_delay asked for.
	DelayUS float64 `json:"delay_us"`
	// Dialled counts connections the client dialled, Connected those it
	// saw connect, Seen those tcpdump saw answered.
	Dialled   int `json:"dialled"`
	Connected int `json:"connected"`
	Seen      int `json:"seen"`
	// Error is each connection's SYN-ACK minus its first SYN minus the
	// delay, both as tcpdump stamped them.
	Error stats.Summary `json:"error"`
	// Early counts handshakes that completed more than 20 µs before their
	// instant.
	Early int `json:"early_over_20us"`
	// Resent counts connections of which tcpdump saw three SYNs or more:
	// the client's, the proxy's replay of it, and the client's
	// retransmission (its first went unanswered for a second). LateSYN
	// counts those with a SYN 0.9 s or more after the first (a
	// retransmission, or a replay that late).
	Resent  int `json:"syn_resent"`
	LateSYN int `json:"syn_late"`
	// FloorUS is the floor's cost of n handshakes on this machine, measured
	// in the same run (FloorRow.SpanUS's median for the same n), and
	// FloorRatio the error's p99 over it.
	FloorUS    float64 `json:"floor_us,omitempty"`
	FloorRatio float64 `json:"p99_over_floor,omitempty"`
	// CPU is the proxy's release clock thread's CPU over the rounds.
	CPU CPUUse `json:"clock_cpu"`
	// Load is /proc/loadavg when the row started; Dropped what the kernel
	// dropped before tcpdump read it.
	Load      string    `json:"loadavg"`
	Dropped   int       `json:"tcpdump_dropped"`
	SamplesUS []float64 `json:"samples_us"`
}

// FloorRow is this machine's floor for n handshakes at once: n SYNs held
// on one listening socket by the hold filter and replayed back to back by
// hand on one thread, timed by tcpdump.
type FloorRow struct {
	N      int `json:"n"`
	Rounds int `json:"rounds"`
	// Span is, per round, the last SYN-ACK (tcpdump) minus the time just
	// before the first replay's sendto(2): the whole batch's cost.
	Span stats.Summary `json:"span"`
	// SpanUS is the median span; PerHandshakeUS is SpanUS / N.
	SpanUS         float64 `json:"span_us"`
	PerHandshakeUS float64 `json:"per_handshake_us"`
	Load           string  `json:"loadavg"`
	Dropped        int     `json:"tcpdump_dropped"`
}

// CPUUse is the CPU a server's release clock thread used over a run,
// per release.
type CPUUse struct {
	// Thread says what was measured: the thread named synhold-clock, or
	// the whole process where no thread had that name.
	Thread       string  `json:"thread,omitempty"`
	CPUUS        float64 `json:"cpu_us"`
	Releases     int     `json:"releases"`
	PerReleaseUS float64 `json:"per_release_us"`
	// ServerPerReleaseUS is the server's own figure, where it logs one at
	// shutdown: its clock thread's CPU time (CLOCK_THREAD_CPUTIME_ID) over
	// the releases of its whole run, ServerReleases of them.
	ServerPerReleaseUS float64 `json:"server_per_release_us,omitempty"`
	ServerReleases     int     `json:"server_releases,omitempty"`
}
