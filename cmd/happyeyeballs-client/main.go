// Command happyeyeballs-client is the debugging client of the Happy
// Eyeballs test server: it asks for a port pair, dials IPv4 and IPv6 at
// once, and says which family connected, how long after the reply, and
// whether the byte it read names the fast family.
//
// Usage:
//
//	happyeyeballs-client [-c PORT] [-d 4|6] [--same-port] [--timeout D]
//
// -d is the slow family. The exit status is 0 only if the fast family won
// and its byte matched.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
