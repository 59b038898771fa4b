package proxybench

import (
	"fmt"
	"io"
	"net"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/synhold/synhold/bench/internal/proc"
	"github.com/synhold/synhold/bench/internal/stats"
)

// forwardCase is one forwarding row being measured: directly (srv nil) or
// through srv's proxies, with dataToxic on both streams if toxic.
type forwardCase struct {
	srv   *apiServer
	ref   *refProxy // the reference proxy instead of a server's
	toxic bool

	row             Row
	echoAddr, sink  string
	proxies         []*toxiclient.Proxy
	rtts            []time.Duration
	mbps, connsPerS []float64
}

// setup names the row and creates its proxies and toxics.
func (c *forwardCase) setup(echoAddr, sinkAddr string) error {
	via := "direct"
	switch {
	case c.srv != nil:
		via = c.srv.via
	case c.ref != nil:
		via = refVia
	}
	c.row = Row{Name: "forward_" + rowName(via), Label: "forwarding, " + via, Via: via}
	if c.toxic {
		c.row.Toxic = toxicString(dataToxic.typ, dataToxic.attrs) + " (both streams)"
		c.row.Name += "_" + dataToxic.typ
		c.row.Label += ", " + c.row.Toxic
	}
	c.echoAddr, c.sink = echoAddr, sinkAddr
	if c.ref != nil {
		c.echoAddr, c.sink = c.ref.echo, c.ref.sink
	}
	if c.srv == nil {
		return nil
	}
	for _, up := range []*string{&c.echoAddr, &c.sink} {
		p, err := newProxy(c.srv.api, "fwd", *up)
		if err != nil {
			return err
		}
		c.proxies = append(c.proxies, p)
		if c.toxic {
			for _, stream := range []string{"upstream", "downstream"} {
				if _, err := p.AddToxic("", dataToxic.typ, stream, 1, dataToxic.attrs); err != nil {
					return err
				}
			}
		}
		*up = p.Listen
	}
	return nil
}

// measureForwarding measures every case: round trips, throughput and
// connections/s in interleaved rounds (the round trips of all rounds
// together, the median round's throughput and connections/s), then each
// case's connects, and the server's RSS and what each idle connection adds
// to it.
func measureForwarding(cases []*forwardCase, echoAddr, sinkAddr string, sz sizes, progress func(string, ...any)) (rows []Row, err error) {
	defer func() {
		for _, c := range cases {
			for _, p := range c.proxies {
				p.Delete()
			}
		}
	}()
	for _, c := range cases {
		if err := c.setup(echoAddr, sinkAddr); err != nil {
			return nil, fmt.Errorf("%s: %w", c.row.Label, err)
		}
	}
	for round := range sz.rounds {
		progress("proxy: forwarding, round %d of %d: %d rows", round+1, sz.rounds, len(cases))
		for _, c := range cases {
			ds, err := pingPong(c.echoAddr, sz.pings/sz.rounds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.row.Label, err)
			}
			c.rtts = append(c.rtts, ds...)
			m, err := throughput(c.sink, sz.bytes/int64(sz.rounds))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.row.Label, err)
			}
			c.mbps = append(c.mbps, m)
			r, err := connRate(c.echoAddr, sz.rate/sz.rounds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.row.Label, err)
			}
			c.connsPerS = append(c.connsPerS, r)
		}
	}
	for _, c := range cases {
		progress("proxy: %s: connects, RSS", c.row.Label)
		row := c.row
		row.RTT, row.MBps, row.ConnsPerS = stats.Summarize(c.rtts), stats.Median(c.mbps), stats.Median(c.connsPerS)
		if row.Connect, _, err = connects(c.echoAddr, sz.connects, 0); err != nil {
			return rows, fmt.Errorf("%s: %w", row.Label, err)
		}
		if c.srv != nil || c.ref != nil {
			if err := c.idleRSS(&row, echoAddr, sinkAddr, sz.idle); err != nil {
				return rows, fmt.Errorf("%s: %w", row.Label, err)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// idleRSS sets the row's RSS (the measured process's, after the rounds)
// and what each of n idle connections, held open, adds to the RSS of a
// fresh process of the same kind (with the case's toxics): a process that
// has just moved gigabytes holds freed memory that new connections would
// reuse, more or less of it from one program to the next.
func (c *forwardCase) idleRSS(row *Row, echoAddr, sinkAddr string, n int) error {
	measured := c.ref.pid()
	if c.srv != nil {
		measured = c.srv.pid
	}
	rss, _, err := proc.Memory(measured)
	if err != nil {
		return err
	}
	row.RSSMB = stats.Round3(float64(rss) / 1e6)
	var pid int
	var addr string
	var stop func()
	if c.ref != nil {
		fresh, err := runRefProxy(c.ref.bin, echoAddr, sinkAddr)
		if err != nil {
			return err
		}
		pid, addr, stop = fresh.pid(), fresh.echo, fresh.stop
	} else {
		fresh, err := startAPI(c.srv.bin)
		if err != nil {
			return err
		}
		f := &forwardCase{srv: fresh, toxic: c.toxic}
		if err := f.setup(echoAddr, sinkAddr); err != nil {
			fresh.stop()
			return err
		}
		pid, addr, stop = fresh.pid, f.echoAddr, fresh.stop
	}
	defer stop()
	before, _, err := proc.Memory(pid)
	if err != nil {
		return err
	}
	idle, err := holdIdle(addr, n)
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	if err != nil {
		return fmt.Errorf("idle connection %d: %w", len(idle), err)
	}
	after, _, err := proc.Memory(pid)
	if err != nil {
		return err
	}
	row.IdleConns = len(idle)
	row.RSSPerIdleKB = stats.Round3((float64(after) - float64(before)) / 1e3 / float64(len(idle)))
	return nil
}

// connRate makes n connections one after another, each a connect, a 1-byte
// round trip through the echo upstream and a close, and returns how many
// it made per second.
func connRate(addr string, n int) (float64, error) {
	b := []byte{1}
	start := time.Now()
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write(b)
		if err == nil {
			_, err = io.ReadFull(c, b)
		}
		c.Close()
		if err != nil {
			return 0, err
		}
	}
	return stats.Round3(float64(n) / time.Since(start).Seconds()), nil
}

// holdIdle opens n connections to the echo upstream addr, each echoing one
// byte (so that the proxy has set it up whole), and returns them open.
func holdIdle(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	b := []byte{1}
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(b); err != nil {
			return conns, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return conns, err
		}
	}
	// Let the proxy's per-connection setup settle before reading its RSS.
	time.Sleep(200 * time.Millisecond)
	return conns, nil
}

// pingPong times n 1-byte round trips on one connection to an echo server.
func pingPong(addr string, n int) ([]time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	b := []byte{1}
	ds := make([]time.Duration, 0, n)
	c.SetDeadline(time.Now().Add(time.Minute))
	for range n {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(start))
	}
	return ds, nil
}

// throughput writes size bytes to a discarding upstream and times it until
// the upstream has read them all (it answers one byte then).
func throughput(addr string, size int64) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, 64<<10)
	start := time.Now()
	if _, err := fmt.Fprintf(c, "%016d", size); err != nil {
		return 0, err
	}
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return 0, err
		}
		left -= n
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return 0, fmt.Errorf("waiting for the upstream's count: %w", err)
	}
	return stats.Round3(float64(size) / (1 << 20) / time.Since(start).Seconds()), nil
}

// startUpstream serves each connection with handle on loopback.
func startUpstream(handle func(net.Conn)) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln, nil
}

func echoConn(c net.Conn) {
	c.(*net.TCPConn).SetNoDelay(true)
	io.Copy(c, c)
}

// discardConn reads a 16-digit length, that many bytes, and answers one
// byte.
func discardConn(c net.Conn) {
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	var size int64
	fmt.Sscanf(string(hdr[:]), "%d", &size)
	if _, err := io.CopyN(io.Discard, c, size); err == nil {
		c.Write([]byte{1})
	}
}
