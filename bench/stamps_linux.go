package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/internal/netaddr"
)

// acceptClock is a plain listener that records when accept(2) returned each
// connection, as the reference retry server times attempts, and closes it at
// once.
type acceptClock struct {
	ln   *net.TCPListener
	done chan struct{}

	mu      sync.Mutex
	at      map[netip.AddrPort]time.Time
	changed chan struct{}
}

func newAcceptClock(network, address string) (*acceptClock, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	a := &acceptClock{ln: ln.(*net.TCPListener), done: make(chan struct{}), at: make(map[netip.AddrPort]time.Time), changed: make(chan struct{})}
	go a.serve()
	return a, nil
}

func (a *acceptClock) serve() {
	defer close(a.done)
	for {
		c, err := a.ln.AcceptTCP()
		at := time.Now()
		if err != nil {
			return
		}
		remote := netaddr.Canonical(c.RemoteAddr().(*net.TCPAddr).AddrPort())
		c.Close()
		a.mu.Lock()
		a.at[remote] = at
		close(a.changed)
		a.changed = make(chan struct{})
		a.mu.Unlock()
	}
}

// addr is the listener's address.
func (a *acceptClock) addr() netip.AddrPort { return a.ln.Addr().(*net.TCPAddr).AddrPort() }

// wait returns when client's connection was accepted.
func (a *acceptClock) wait(client netip.AddrPort, deadline time.Time) (time.Time, error) {
	client = netaddr.Canonical(client)
	var at time.Time
	err := waitUntil(deadline, func() (bool, <-chan struct{}, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		t, ok := a.at[client]
		if ok {
			at = t
			delete(a.at, client)
		}
		return ok, a.changed, nil
	})
	if errors.Is(err, errLate) {
		err = fmt.Errorf("no accept of %v in time", client)
	}
	return at, err
}

func (a *acceptClock) close() {
	a.ln.Close()
	<-a.done
}

// stampRows measures n connection attempts, IPv4 and IPv6 alternately: the
// SYN's capture timestamp and the accept time, each against the client's
// time.Now() right before connect(2).
func stampRows(sn *sniffer, n int) ([]StampRow, error) {
	var servers [2]*acceptClock
	for i, fam := range [][2]string{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		a, err := newAcceptClock(fam[0], fam[1])
		if err != nil {
			return nil, err
		}
		defer a.close()
		servers[i] = a
	}
	var syns, accepts []time.Duration
	impossible := 0
	for i := range n {
		syn, acc, err := stampTrial(sn, servers[i%2])
		if err != nil {
			return nil, fmt.Errorf("timestamp trial %d: %w", i, err)
		}
		if syn < 0 {
			impossible++ // the wall clock stepped back between the two readings
		} else {
			syns = append(syns, syn)
		}
		accepts = append(accepts, acc)
		time.Sleep(time.Millisecond) // one attempt at a time, as a backoff client makes them
	}
	return []StampRow{
		{Name: "syn-capture", Label: "SYN capture (kernel timestamp) − client record", Delta: stats.Summarize(syns),
			Impossible: impossible, SamplesUS: stats.SamplesUS(syns)},
		{Name: "accept", Label: "accept(2) returned − client record", Delta: stats.Summarize(accepts), SamplesUS: stats.SamplesUS(accepts)},
	}, nil
}

// stampTrial makes one attempt on a and returns how long after the client's
// record the SYN was captured and the connection accepted. The SYN's time
// is the kernel's wall-clock time, so that difference is of wall-clock
// readings; the accept's is of monotonic ones (both from time.Now()).
func stampTrial(sn *sniffer, a *acceptClock) (syn, accept time.Duration, err error) {
	c, err := dialStart(a.addr())
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	defer sn.forget(c.Local)
	deadline := time.Now().Add(2 * time.Second)
	f, err := sn.waitSYN(c.Local, deadline)
	if err != nil {
		return 0, 0, err
	}
	at, err := a.wait(c.Local, deadline)
	if err != nil {
		return 0, 0, err
	}
	return f.syn.Sub(c.Started), at.Sub(c.Started), nil
}
