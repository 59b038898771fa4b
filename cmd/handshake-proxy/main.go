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
// SIGTERM shuts it down gracefully. The
// handshake toxics need Linux; handshake_delay and handshake_refuse also
// need CAP_NET_RAW. LOG_LEVEL (debug, info, warn, error) sets the log level,
// as for toxiproxy-server. See package broker/proxy.
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
