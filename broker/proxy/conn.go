package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// pair is one proxied connection: the client's side and the upstream's.
type pair struct {
	client, upstream *end
	up, down         *pump // set under the run's mutex before they start
	started          time.Time
	open             atomic.Int32 // ends not yet closed
	done             func(*pair)  // called once, when both ends are closed
}

func newPair(client, upstream net.Conn, done func(*pair)) *pair {
	p := &pair{started: time.Now(), done: done}
	p.client = &end{c: client, p: p}
	p.upstream = &end{c: upstream, p: p}
	p.open.Store(2)
	return p
}

// abort closes both sockets, whatever the links are doing; the links then
// see the error, close their ends and end.
func (p *pair) abort() {
	p.client.c.Close()
	p.upstream.c.Close()
}

// setLinger sets SO_LINGER on both sockets (0: close sends a RST).
func (p *pair) setLinger(sec int) error {
	for _, e := range []*end{p.client, p.upstream} {
		if l, ok := e.c.(interface{ SetLinger(int) error }); ok {
			if err := l.SetLinger(sec); err != nil {
				return err
			}
		}
	}
	return nil
}

// end is one side of a pair: its socket, the bytes read from it (by a
// splice or a link) and its close, once.
type end struct {
	c     net.Conn
	p     *pair
	read  atomic.Int64
	once  sync.Once
	close error
}

// Close closes the socket; the second end closed finishes the pair.
func (e *end) Close() error {
	e.once.Do(func() {
		e.close = e.c.Close()
		if e.p.open.Add(-1) == 0 {
			e.p.done(e.p)
		}
	})
	return e.close
}
