package happyeyeballs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// lingerMax bounds how long a connection that was answered is kept open
// to read what the client still sends, so that closing it sends a FIN
// rather than a RST that could destroy the answer.
const lingerMax = time.Second

// serveConn answers the one request of control connection c and closes it.
func (s *Server) serveConn(c net.Conn) {
	from := c.RemoteAddr().String()
	b, err := s.readRequest(c)
	received := time.Now()
	if err != nil {
		s.log.Info("control connection closed without a request", "from", from, "why", readWhy(err))
		c.Close()
		return
	}
	req, perr := parseRequest(b)
	if s.cfg.SamePort && req.Op == opPair {
		req.SamePort = true
	}
	if req.Op == opJudge {
		if req.Port, err = s.readPort(c); err != nil {
			perr = err
		}
	}
	reply, p := s.answer(req, perr, from)
	err = writeReply(c, reply, s.cfg.IdleTimeout)
	if p != nil {
		p.announce(from, received, time.Now())
		p.serve()
		s.fill()
	}
	if err != nil {
		s.log.Warn("control reply failed", "from", from, "request", hexByte(b), "err", err)
		if p != nil {
			p.close("reply failed: nobody knows its ports")
		}
	}
	if req.Op == opShutdown && perr == nil {
		s.stop("0xff request from " + from)
	}
	linger(c, min(s.cfg.IdleTimeout, lingerMax))
}

// answer carries out req and returns the reply to send, with the pair it
// opened, if any.
func (s *Server) answer(req request, perr error, from string) ([]byte, *pair) {
	switch {
	case perr != nil && req.Op == opJudge:
		s.log.Warn("judgement request without its port; replied 0x00", "request", hexByte(req.Byte), "from", from, "why", readWhy(perr))
		return []byte{replyFailure}, nil
	case perr != nil:
		s.log.Warn("unknown control request; replied 0x00", "request", hexByte(req.Byte), "from", from)
		return []byte{replyFailure}, nil
	case req.Op == opJudge:
		return s.answerJudge(req.Port, from), nil
	case req.Op == opPair:
		p, err := s.newPair(req)
		if err != nil {
			s.log.Error("pair request failed; replied 0x00", "request", hexByte(req.Byte), "from", from, "err", err)
			return []byte{replyFailure}, nil
		}
		return encodeReply(req, p.sides[0].port(), p.sides[1].port()), p
	case req.Op == opPing:
		s.log.Debug("ping", "from", from)
		return encodeReply(req, 0, 0), nil
	default:
		s.log.Info("shutdown requested", "request", hexByte(req.Byte), "from", from)
		return encodeReply(req, 0, 0), nil
	}
}

// readRequest reads the request byte, waiting at most IdleTimeout. The
// deadline is set before looking whether the server is stopping, so that
// it cannot undo the one stop sets.
func (s *Server) readRequest(c net.Conn) (byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
		return 0, fmt.Errorf("set read deadline: %w", err)
	}
	if s.isClosing() {
		return 0, errClosed
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("read request: %w", err)
	}
	return b[0], nil
}

// readWhy says in a word why no request byte came.
func readWhy(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "idle"
	case errors.Is(err, io.EOF):
		return "closed by client"
	case errors.Is(err, errClosed):
		return "server stopping"
	default:
		return err.Error()
	}
}

// writeReply writes b to c, waiting at most limit.
func writeReply(c net.Conn, b []byte, limit time.Duration) error {
	if err := c.SetWriteDeadline(time.Now().Add(limit)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// linger closes c gracefully: it shuts down the sending side, reads and
// discards what the client still sends until it closes too (or max has
// passed), then closes. A connection without a half-close (net.Pipe) is
// closed at once.
func linger(c net.Conn, max time.Duration) {
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if c.SetReadDeadline(time.Now().Add(max)) != nil {
		return
	}
	io.Copy(io.Discard, c)
}

// hexByte formats a protocol byte for logs.
func hexByte(b byte) string { return fmt.Sprintf("0x%02x", b) }

// readPort reads the two bytes of port that follow 0xE0, within the
// deadline readRequest set.
func (s *Server) readPort(c net.Conn) (uint16, error) {
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("read port: %w", err)
	}
	return binary.BigEndian.Uint16(b[:]), nil
}

// answerJudge answers 0xE0 for IPv4 port port: the judgement once the
// pair closed, 0x02 while it is open, 0x00 for a port no pair was handed
// out on.
func (s *Server) answerJudge(port uint16, from string) []byte {
	j, known, closed := s.judgementOf(port)
	switch {
	case !known:
		s.log.Info("judgement of an unknown pair; replied 0x00", "ipv4_port", port, "from", from)
		return []byte{replyFailure}
	case !closed:
		s.log.Debug("judgement of an open pair; replied 0x02", "ipv4_port", port, "from", from)
		return []byte{replyOpen}
	}
	s.log.Debug("judgement sent", "pair", j.Pair, "ipv4_port", port, "from", from)
	return encodeJudgement(j)
}
