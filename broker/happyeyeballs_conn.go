package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// heLingerMax bounds how long a connection that was answered is kept open
// to read what the client still sends, so that closing it sends a FIN
// rather than a RST that could destroy the answer.
const heLingerMax = time.Second

// serveConn answers the one request of control connection c and closes it.
func (s *HappyEyeballs) serveConn(c net.Conn) {
	from := c.RemoteAddr().String()
	b, err := s.readRequest(c)
	if err != nil {
		s.logger().Info("control connection closed without a request", "from", from, "why", heReadWhy(err))
		c.Close()
		return
	}
	req, perr := ParseHappyEyeballsRequest(b)
	if s.SamePort && req.Op == HappyEyeballsPair {
		req.SamePort = true
	}
	reply, p := s.answer(req, perr, from)
	if err := heWrite(c, reply, s.idleTimeout()); err != nil {
		s.logger().Warn("control reply failed", "from", from, "request", heHex(b), "err", err)
		if p != nil {
			p.close("reply failed: nobody knows its ports")
		}
	}
	if req.Op == HappyEyeballsShutdown && perr == nil {
		s.stop("0xff request from " + from)
	}
	heLinger(c, min(s.idleTimeout(), heLingerMax))
}

// answer carries out req and returns the reply to send, with the pair it
// opened, if any.
func (s *HappyEyeballs) answer(req HappyEyeballsRequest, perr error, from string) ([]byte, *hePair) {
	switch {
	case perr != nil:
		s.logger().Warn("unknown control request; replied 0x00", "request", heHex(req.Byte), "from", from)
		return []byte{heReplyFailure}, nil
	case req.Op == HappyEyeballsPair:
		p, err := s.openPair(req, from)
		if err != nil {
			s.logger().Error("pair request failed; replied 0x00", "request", heHex(req.Byte), "from", from, "err", err)
			return []byte{heReplyFailure}, nil
		}
		return heReply(req, p.sides[0].port(), p.sides[1].port()), p
	case req.Op == HappyEyeballsPing:
		s.logger().Debug("ping", "from", from)
		return heReply(req, 0, 0), nil
	default:
		s.logger().Info("shutdown requested", "request", heHex(req.Byte), "from", from)
		return heReply(req, 0, 0), nil
	}
}

// readRequest reads the request byte, waiting at most IdleTimeout. The
// deadline is set before looking whether the server is stopping, so that
// it cannot undo the one stop sets.
func (s *HappyEyeballs) readRequest(c net.Conn) (byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(s.idleTimeout())); err != nil {
		return 0, fmt.Errorf("set read deadline: %w", err)
	}
	if s.isClosing() {
		return 0, errHEClosed
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("read request: %w", err)
	}
	return b[0], nil
}

// heReadWhy says in a word why no request byte came.
func heReadWhy(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "idle"
	case errors.Is(err, io.EOF):
		return "closed by client"
	case errors.Is(err, errHEClosed):
		return "server stopping"
	default:
		return err.Error()
	}
}

// heWrite writes b to c, waiting at most limit.
func heWrite(c net.Conn, b []byte, limit time.Duration) error {
	if err := c.SetWriteDeadline(time.Now().Add(limit)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// heLinger closes c gracefully: it shuts down the sending side, reads and
// discards what the client still sends until it closes too (or max has
// passed), then closes. A connection without a half-close (net.Pipe) is
// closed at once.
func heLinger(c net.Conn, max time.Duration) {
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

// heHex formats a protocol byte for logs.
func heHex(b byte) string { return fmt.Sprintf("0x%02x", b) }
