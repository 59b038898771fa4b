package main

import (
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/synhold/synhold/bench/internal/proc"
	"github.com/synhold/synhold/bench/internal/stats"
)

// suite runs the parallel suite: happyeyeballs-server in its own process,
// suiteClients client processes asking it for pairs at once, each pairs
// pairs one after another (IPv6 first, IPv4 250 ms later, as a driver's
// dialler does), tcpdump as the observer.
func suite(sn *sniffer, pairs int) ([]UsedRow, error) {
	return asUsed(sn, []usedCase{{name: "suite/8", label: "8 client processes in parallel, IPv6 first", pairs: pairs,
		clients: suiteClients, clientArgs: []string{"-modes", "v6first"}}})
}

// noopProcess is the do-nothing control server (noopCommand) in its own
// process.
type noopProcess struct {
	*proc.Child
	addr string
}

// startNoopServer starts self as the do-nothing server and returns once it
// listens.
func startNoopServer(self string) (*noopProcess, error) {
	p := &noopProcess{}
	ch, err := proc.Start(exec.Command(self, noopCommand), 10*time.Second, func(line []byte) bool {
		a, ok := strings.CutPrefix(strings.TrimSpace(string(line)), noopReady)
		p.addr = a
		return ok
	})
	if err != nil {
		return nil, err
	}
	p.Child = ch
	return p, nil
}

// address is the server's control address; "" for none.
func (p *noopProcess) address() string {
	if p == nil {
		return ""
	}
	return p.addr
}

func (p *noopProcess) stop() error { return p.Child.Stop(syscall.SIGTERM, 5*time.Second) }

// floorReplies is the do-nothing server's reply latency over pairs.
func floorReplies(pairs []clientPair) stats.Summary {
	var ds []time.Duration
	for _, p := range pairs {
		if p.FloorReply > 0 {
			ds = append(ds, p.FloorReply)
		}
	}
	return stats.Summarize(ds)
}

// serverClockCPU adds to u the server's own figure of its clock's CPU per
// release, from its "release clock" line at shutdown (if it logged one).
func serverClockCPU(u *CPUUse, lines []serverLine) {
	for _, l := range lines {
		if l.Msg == "release clock" {
			u.ServerPerReleaseUS, u.ServerReleases = stats.Round3(l.CPUPerReleaseUS), l.Releases
		}
	}
}

// released counts the server's "released" lines: the handshakes its clock
// released.
func released(lines []serverLine) int {
	n := 0
	for _, l := range lines {
		if l.Msg == "released" {
			n++
		}
	}
	return n
}
