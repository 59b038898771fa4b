package happyeyeballs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// DefaultControlPort is the control port of the original server, and of
// happyeyeballs-server unless told otherwise.
const DefaultControlPort = 10036

// DefaultClientTimeout bounds one control exchange of a Client whose
// Timeout is zero.
const DefaultClientTimeout = 5 * time.Second

// ErrRefused is returned, wrapped, when the server answered 0x00: it
// could not open a pair (its log says why), or it did not know the byte.
var ErrRefused = errors.New("happyeyeballs: the server answered 0x00")

// Client speaks the control protocol to a Happy Eyeballs server: it asks
// for port pairs, pings, and stops the server. The zero value talks to
// 127.0.0.1:10036. Each call is one control connection; a Client may be
// used by several goroutines at once.
type Client struct {
	// Addr is the control port, host:port; "" is 127.0.0.1:10036.
	Addr string
	// SamePort asks for pairs with both families on one port number
	// (requests 0x14 and 0x16), for clients that dial a host name.
	SamePort bool
	// Timeout bounds each exchange, dial included, within the context's
	// deadline; DefaultClientTimeout if zero.
	Timeout time.Duration
}

// Pair is a port pair the server opened: where each family listens, and
// which one is slow. Dial both with the code under test; the fast family
// must win, and the connection then reads one byte, FamilyByte(Fast()).
type Pair struct {
	// IPv4 is the IPv4 side, on 127.0.0.1.
	IPv4 netip.AddrPort
	// IPv6 is the IPv6 side, on ::1. Its port equals IPv4's for a
	// same-port pair.
	IPv6 netip.AddrPort
	// Slow is the family whose handshakes complete later, 4 or 6.
	Slow int
}

// Fast is the family that must win, 4 or 6.
func (p Pair) Fast() int { return 10 - p.Slow }

// Addr is the side of family (4 or 6).
func (p Pair) Addr(family int) netip.AddrPort {
	if family == 4 {
		return p.IPv4
	}
	return p.IPv6
}

// FamilyByte is the byte the winning connection of a pair reads: 0x04 when
// it came over IPv4, 0x06 over IPv6.
func FamilyByte(family int) byte { return byte(family) }

// Pair asks for a port pair whose family slow (4 or 6) is the slow one.
// The pair's delays count from when the server hands it out, just before it
// replies (a spare pair opened earlier starts its clock then too): dial at
// once. A server that could not open a pair answers 0x00: the error then
// wraps ErrRefused.
func (c *Client) Pair(ctx context.Context, slow int) (Pair, error) {
	if slow != 4 && slow != 6 {
		return Pair{}, fmt.Errorf("happyeyeballs: slow family %d: want 4 or 6", slow)
	}
	b := byte(slow)
	if c.SamePort {
		b |= 0x10
	}
	req, err := parseRequest(b)
	if err != nil {
		return Pair{}, err
	}
	var p Pair
	err = c.exchange(ctx, req, func(r io.Reader) (err error) {
		p, err = readPairReply(r, req)
		return err
	})
	return p, err
}

// judgementPoll is how often Judgement asks again while the pair is open.
const judgementPoll = 20 * time.Millisecond

// Judgement asks for the server's judgement of pair p (request 0xE0 and
// p's IPv4 port): what the client did on it, judged against RFC 8305. The
// server answers once the pair has closed, which it does when the first
// connection on it was accepted (or at its timeout); until then Judgement
// asks again every 20 ms, until ctx is done. A port the server handed out
// no pair on is an error wrapping ErrRefused.
func (c *Client) Judgement(ctx context.Context, p Pair) (Judgement, error) {
	req := request{Byte: reqJudge, Op: opJudge, Port: p.IPv4.Port()}
	for {
		var j Judgement
		open := false
		err := c.exchange(ctx, req, func(r io.Reader) (err error) {
			j, open, err = readJudgement(r)
			return err
		})
		switch {
		case errors.Is(err, ErrRefused):
			return Judgement{}, fmt.Errorf("%w: no pair was handed out on IPv4 port %d", err, req.Port)
		case err != nil || !open:
			return j, err
		}
		if !sleepCtx(ctx, judgementPoll) {
			return Judgement{}, fmt.Errorf("happyeyeballs: the pair on IPv4 port %d has not closed: %w", req.Port, ctx.Err())
		}
	}
}

// readJudgement reads the answer to 0xE0: 0x01, a length and the JSON of a
// Judgement; 0x02 while the pair is open (open is then true); 0x00.
func readJudgement(r io.Reader) (j Judgement, open bool, err error) {
	var b [5]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return j, false, fmt.Errorf("read reply: %w", err)
	}
	if b[0] == replyOpen {
		return j, true, nil
	}
	if err := checkStatus(b[0]); err != nil {
		return j, false, err
	}
	if _, err := io.ReadFull(r, b[1:5]); err != nil {
		return j, false, fmt.Errorf("read judgement length: %w", err)
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if n > maxJudgementLen {
		return j, false, fmt.Errorf("judgement of %d bytes, more than %d: is this a Happy Eyeballs control port?", n, maxJudgementLen)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return j, false, fmt.Errorf("read judgement: %w", err)
	}
	j, err = decodeJudgement(js)
	return j, false, err
}

// decodeJudgement parses a Judgement's JSON, insisting on every field.
func decodeJudgement(js []byte) (Judgement, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		return Judgement{}, fmt.Errorf("judgement %q: %w", js, err)
	}
	for _, k := range []string{"pair", "first", "attempt_delay_ms", "winner", "verdict", "deviations", "why"} {
		if _, ok := fields[k]; !ok {
			return Judgement{}, fmt.Errorf("judgement %q has no %q", js, k)
		}
	}
	var j Judgement
	if err := json.Unmarshal(js, &j); err != nil {
		return Judgement{}, fmt.Errorf("judgement %q: %w", js, err)
	}
	if j.Deviations == nil {
		j.Deviations = []Deviation{}
	}
	return j, nil
}

// Ping asks whether the server is ready; nil once it answered.
func (c *Client) Ping(ctx context.Context) error {
	return c.exchange(ctx, request{Byte: reqPing, Op: opPing}, readAck)
}

// Wait pings the server every poll until it answers, or ctx is done; it
// then returns the last error. It is what happyeyeballs-server --wait does.
func (c *Client) Wait(ctx context.Context, poll time.Duration) error {
	var last error
	for {
		err := c.Ping(ctx)
		if err == nil {
			return nil
		}
		// A ping cut short by ctx's deadline says less than the one before
		// it (a refusal, say): keep that one. The dial may see the deadline
		// pass before ctx.Err does.
		if last == nil || ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		if !sleepCtx(ctx, poll) {
			return fmt.Errorf("happyeyeballs: wait: %w; last error: %w", ctx.Err(), last)
		}
	}
}

// Stop asks the server to shut down (0xFF), then waits, polling every
// poll, until its control port refuses connections, or ctx is done. With
// no server running, the error satisfies errors.Is(err,
// syscall.ECONNREFUSED).
func (c *Client) Stop(ctx context.Context, poll time.Duration) error {
	if err := c.exchange(ctx, request{Byte: reqShutdown, Op: opShutdown}, readAck); err != nil {
		return err
	}
	for {
		conn, err := c.dial(ctx)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if err == nil {
			conn.Close()
		}
		if !sleepCtx(ctx, poll) {
			return fmt.Errorf("happyeyeballs: server on %s acknowledged 0xff but its control port is still open: %w", c.addr(), ctx.Err())
		}
	}
}

func (c *Client) addr() string {
	if c.Addr == "" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultControlPort))
	}
	return c.Addr
}

func (c *Client) timeout() time.Duration { return orDefault(c.Timeout, DefaultClientTimeout) }

// dial opens a control connection, bounded by the exchange timeout.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr())
	if err != nil {
		return nil, fmt.Errorf("happyeyeballs: no server on %s: %w", c.addr(), err)
	}
	return conn, nil
}

// exchange sends req's byte on a control connection of its own and hands
// the connection to read for the reply. A ctx done mid-way cuts it short.
func (c *Client) exchange(ctx context.Context, req request, read func(io.Reader) error) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(c.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("happyeyeballs: set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = func() error {
		msg := []byte{req.Byte}
		if req.Op == opJudge {
			msg = binary.BigEndian.AppendUint16(msg, req.Port)
		}
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("send %s: %w", hexByte(req.Byte), err)
		}
		return read(conn)
	}()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("happyeyeballs: %s request to %s: %w", req.Op, c.addr(), err)
	}
	return nil
}

// readAck reads the 0x01 that answers a ping or a shutdown.
func readAck(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	return checkStatus(b[0])
}

func checkStatus(b byte) error {
	switch b {
	case replyOK:
		return nil
	case replyFailure:
		return ErrRefused
	}
	return fmt.Errorf("reply %s, want 0x01 (is this a Happy Eyeballs control port?)", hexByte(b))
}

// readPairReply reads the answer to pair request req: 0x01 and two ports,
// or one for a same-port pair.
func readPairReply(r io.Reader, req request) (Pair, error) {
	var buf [5]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return Pair{}, fmt.Errorf("read reply: %w", err)
	}
	if err := checkStatus(buf[0]); err != nil {
		if errors.Is(err, ErrRefused) {
			return Pair{}, fmt.Errorf("%w: no pair for %s (the server's log says why)", err, hexByte(req.Byte))
		}
		return Pair{}, err
	}
	n := 5
	if req.SamePort {
		n = 3
	}
	if got, err := io.ReadFull(r, buf[1:n]); err != nil {
		return Pair{}, fmt.Errorf("read ports: %d of %d bytes: %w", got, n-1, err)
	}
	p4 := binary.BigEndian.Uint16(buf[1:3])
	p6 := p4
	if !req.SamePort {
		p6 = binary.BigEndian.Uint16(buf[3:5])
	}
	if p4 == 0 || p6 == 0 {
		return Pair{}, fmt.Errorf("reply % x names port 0", buf[:n])
	}
	return Pair{
		IPv4: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p4),
		IPv6: netip.AddrPortFrom(netip.IPv6Loopback(), p6),
		Slow: req.Slow,
	}, nil
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
