// Command happyeyeballs-client is the debugging client of the Happy
// Eyeballs test server: it asks for a port pair, dials IPv4 and IPv6 at
// once, and says which family connected, how long after the reply, and
// whether the byte it read names the fast family.
//
// Usage:
//
//	happyeyeballs-client [-c PORT] [-d 4|6] [--same-port] [--timeout D]
//
// -c is the server's control port on 127.0.0.1 (default 10036), -d the slow
// family (default 4), --timeout the bound on the whole run (default 10s).
// After the result it prints the server's judgement of this client against
// RFC 8305: it dials both families at once, so the server says it deviates
// (NoAttemptDelay). The exit status is 0 only if the fast family won and its
// byte matched; the judgement does not change it. It needs no privilege.
// docs/happyeyeballs-server.md describes the server.
package main

import "github.com/synhold/synhold/internal/cli"

func main() {
	cli.Main(run)
}
