// Package dialrace dials one address per family and keeps the first
// connection, as a Happy Eyeballs client does (RFC 8305 section 5): the
// happyeyeballs-client command's race, and the driver a test of the server
// plays.
package dialrace

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Target is an address to dial and its network, "tcp4" or "tcp6".
type Target struct {
	Network, Addr string
}

// Attempt is how the dial of one target went.
type Attempt struct {
	Target
	Start time.Time // when its connect(2) was about to be made (when the dial began, if it failed before)
	Done  time.Time // when the dial returned
	Local string    // the connection's local address, when it connected (the winner, or a loser that connected too)
	Err   error     // why it did not connect; a loser's is the cancellation
}

// Race dials targets in order: the first at once, each next one stagger
// after the one before started its connect(2) (so that a loaded machine's
// late first SYN does not shorten the delay the server sees), or at once
// when the one before fails (RFC 8305 section 5); with stagger 0 it dials
// them all at once. It returns the first connection, the index of its
// target, and every attempt: when Race returns the others have been
// cancelled, or closed if they connected too, and their attempts are
// complete. With no connection it returns the attempts' errors, joined.
func Race(ctx context.Context, stagger time.Duration, targets ...Target) (net.Conn, int, []Attempt, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i    int
		conn net.Conn
		done time.Time
		err  error
	}
	type connecting struct {
		i  int
		at time.Time
	}
	results := make(chan result, len(targets))
	connectings := make(chan connecting, len(targets))
	attempts := make([]Attempt, 0, len(targets))
	start := func() {
		i := len(attempts)
		attempts = append(attempts, Attempt{Target: targets[i], Start: time.Now()})
		go func() {
			var once sync.Once // a name with several addresses tells its first connect only
			d := net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error {
				once.Do(func() { connectings <- connecting{i, time.Now()} })
				return nil
			}}
			c, err := d.DialContext(ctx, targets[i].Network, targets[i].Addr)
			results <- result{i, c, time.Now(), err}
		}()
	}
	if len(targets) > 0 {
		start()
	}
	for stagger == 0 && len(attempts) < len(targets) {
		start()
	}
	// next fires when the next target is due: stagger after the last
	// one's connect began; nil while it is not known or none is left.
	var next <-chan time.Time
	timer := time.NewTimer(stagger)
	timer.Stop()
	defer timer.Stop()
	var win net.Conn
	winner, pending := -1, len(attempts)
	for pending > 0 && win == nil {
		select {
		case c := <-connectings:
			attempts[c.i].Start = c.at
			if c.i == len(attempts)-1 && len(attempts) < len(targets) {
				timer.Reset(stagger - time.Since(c.at)) // since Go 1.23 no stale tick survives a Reset
				next = timer.C
			}
		case <-next:
			next = nil
			start()
			pending++
		case r := <-results:
			pending--
			a := &attempts[r.i]
			a.Done, a.Err = r.done, r.err
			if r.err != nil {
				if r.i == len(attempts)-1 && len(attempts) < len(targets) {
					timer.Stop()
					next = nil
					start() // the last one failed: the next at once
					pending++
				}
				continue
			}
			a.Local = r.conn.LocalAddr().String()
			win, winner = r.conn, r.i
		}
	}
	cancel()
	for range pending { // the losers: cancelled, or connected too
		r := <-results
		a := &attempts[r.i]
		a.Done, a.Err = r.done, r.err
		if r.conn != nil {
			a.Local = r.conn.LocalAddr().String()
			r.conn.Close()
		}
	}
	for len(connectings) > 0 { // a loser's connect began after the winner's
		c := <-connectings
		attempts[c.i].Start = c.at
	}
	if win == nil {
		var errs []error
		for _, a := range attempts {
			errs = append(errs, a.Err) // each names its network and address
		}
		if len(errs) == 0 {
			errs = append(errs, errors.New("no address to dial"))
		}
		return nil, -1, attempts, errors.Join(errs...)
	}
	return win, winner, attempts, nil
}
