// Command happyeyeballs-server is the Happy Eyeballs test server, a drop-in
// for the original Python server.py used by driver tests.
//
// Usage:
//
//	happyeyeballs-server [-c|--control PORT] [--wait] [--stop] [--timeout D]
//	    [--fast-delay D] [--slow-delay D] [--pair-timeout D] [--idle-timeout D]
//	    [--same-port] [--spares N] [--nice N]
//	    [--strategy auto|replay|retransmit|delayed-listen]
//	    [--log-format text|json] [--report DIR]
//
// With no mode flag it serves the control port (default 10036) on
// 127.0.0.1 and ::1 until SIGINT, SIGTERM or a 0xFF request. It judges
// every pair's client against RFC 8305 (log line "pair judged", request
// 0xE0), logs a summary when it stops, and with --report writes the
// judgements and a timeline picture into DIR. --wait pings
// a server running elsewhere until it answers; --stop asks it to shut down
// and waits until it has gone.
//
// With CAP_NET_RAW (root, or setcap cap_net_raw+ep on the binary) each side
// of a pair completes its handshakes within ~0.1 ms of its instant; without
// it, at the client's first SYN retransmission after it (1 s after the SYN,
// then 3 s...), and every judgement is unknown. --nice below the current
// value needs CAP_SYS_NICE; without it the threads keep theirs. The
// start-up line ("happy eyeballs server ready") says which strategy, hold
// and nice value the server got, and why. SYNHOLD_SPIN, SYNHOLD_REALTIME, SYNHOLD_WARM, SYNHOLD_EARLY and
// SYNHOLD_ENGINE_LINGER tune the release machinery (docs/design.md).
//
// docs/happyeyeballs-server.md describes the protocol, the log lines and
// the judgements; package broker/happyeyeballs is the server and a client
// for Go.
package main

import (
	"os"

	"github.com/synhold/synhold/internal/cli"
	"github.com/synhold/synhold/internal/tune"
)

func main() {
	// Fewer collections (GOGC 400); GOGC in the environment wins.
	// The start-up line says what the process runs with.
	tune.SetServerRuntime(os.Getenv)
	cli.Main(run)
}
