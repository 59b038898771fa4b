// Command handshake-proxy is a TCP proxy that speaks Toxiproxy's HTTP API, so
// toxiproxy's clients (its Go client, toxiproxy-cli, the clients in other
// languages, Testcontainers' Toxiproxy modules) drive it unchanged, and that
// adds the toxics Toxiproxy cannot have: handshake_delay, handshake_hold and
// handshake_refuse, which delay, withhold or refuse the TCP handshake itself.
//
// Usage:
//
//	handshake-proxy [-host HOST] [-port PORT] [-config FILE] [-seed N]
//	    [-proxy-metrics] [-runtime-metrics]
//	    [--strategy auto|replay|retransmit] [--log-format text|json] [-version]
//
// The flags are toxiproxy-server's (v2.12.0): the API listens on HOST:PORT
// (default localhost:8474); FILE is a JSON array of proxies created at
// start; -proxy-metrics and -runtime-metrics serve GET /metrics. SIGINT or
// SIGTERM shuts it down gracefully. LOG_LEVEL (debug, info, warn, error)
// sets the log level, as for toxiproxy-server.
//
// The handshake toxics need Linux. handshake_delay, handshake_refuse and a
// handshake_hold with toxicity below 1 also need CAP_NET_RAW (root, or
// setcap cap_net_raw+ep on the binary) and a socket filter, which kernels
// with kernel.unprivileged_bpf_disabled set refuse without CAP_NET_ADMIN;
// without them the API answers those toxics 501, naming what is missing,
// and the start-up line "handshake toxics" says what can run.
// docs/handshake-proxy.md lists the toxics, routes, metrics and logs, and
// the container image's capabilities; package broker/proxy is the server
// for Go.
package main

import (
	"context"
	"io"
	"os"

	"github.com/synhold/synhold/internal/cli"
	"github.com/synhold/synhold/internal/tune"
)

func main() {
	// Fewer collections (GOGC 400), as happyeyeballs-server; GOGC in the
	// environment wins.
	tune.SetServerRuntime(os.Getenv)
	cli.Main(func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return run(ctx, args, stdout, stderr, nil)
	})
}
