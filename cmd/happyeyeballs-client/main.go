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

import "github.com/synhold/synhold/internal/cli"

func main() {
	cli.Main(run)
}
