package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// poolCommand is the first argument that makes the benchmark's binary the
// client process of the pool rows: see runPoolClient.
const poolCommand = "poolclient"

// poolRound is what the pool client saw of one round; it writes one per
// line, as JSON, on stdout.
type poolRound struct {
	Dialled   int      `json:"dialled"`
	Connected int      `json:"connected"`
	Errors    []string `json:"errors,omitempty"`
}

// runPoolClient is the client process of the pool rows: each round it
// dials -n connections to -addr at once, one goroutine each, as a driver's
// pool does when a test starts, keeps them until every dial returned, then
// closes them all (with a RST, so that no port stays in TIME_WAIT) and
// stays idle -gap before the next round. It returns the exit status.
func runPoolClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(poolCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "address to dial, host:port")
	n := fs.Int("n", 10, "connections dialled at once per round")
	rounds := fs.Int("rounds", 1, "rounds")
	gap := fs.Duration("gap", 300*time.Millisecond, "idle time between rounds")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on a dial after this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || *n < 1 || *rounds < 1 || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench %s: want -addr host:port, -n ≥ 1, -rounds ≥ 1 and no arguments\n", poolCommand)
		return 2
	}
	enc := json.NewEncoder(stdout)
	for r := range *rounds {
		if r > 0 {
			time.Sleep(*gap)
		}
		if err := enc.Encode(dialPool(*addr, *n, *timeout)); err != nil {
			fmt.Fprintf(stderr, "bench %s: %v\n", poolCommand, err)
			return 1
		}
	}
	return 0
}

// dialPool dials n connections to addr at once and closes them once every
// dial returned.
func dialPool(addr string, n int, timeout time.Duration) poolRound {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	atOnce(n, func(i int) { conns[i], errs[i] = net.DialTimeout("tcp", addr, timeout) })
	r := poolRound{Dialled: n}
	for i, c := range conns {
		if errs[i] != nil {
			if len(r.Errors) < 5 {
				r.Errors = append(r.Errors, errs[i].Error())
			}
			continue
		}
		r.Connected++
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	return r
}

// atOnce runs fn(0), ..., fn(n-1) in n goroutines started together (each
// waits for the last to exist), and returns once every one returned.
func atOnce(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}
