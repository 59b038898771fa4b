package happyeyeballs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// op is what a Happy Eyeballs control request asks for.
type op uint8

const (
	// opPair asks for a port pair with one slow family.
	opPair op = iota + 1
	// opPing asks whether the server is ready (what --wait sends).
	opPing
	// opShutdown asks the server to shut down (what --stop sends).
	opShutdown
	// opJudge asks for the judgement of the pair on a port.
	opJudge
)

var opNames = [...]string{"", "pair", "ping", "shutdown", "judgement"}

func (o op) String() string {
	if int(o) >= len(opNames) || o == 0 {
		return fmt.Sprintf("op(%d)", int(o))
	}
	return opNames[o]
}

// The control protocol's bytes.
const (
	reqSlow4     = 0x04 // pair, IPv4 slow, two port numbers
	reqSlow6     = 0x06 // pair, IPv6 slow, two port numbers
	reqSame4     = 0x14 // pair, IPv4 slow, one port number for both
	reqSame6     = 0x16 // pair, IPv6 slow, one port number for both
	reqPing      = 0xF0
	reqShutdown  = 0xFF
	reqJudge     = 0xE0 // and a pair's IPv4 port, big-endian: its Judgement
	replyOK      = 0x01
	replyFailure = 0x00
	replyOpen    = 0x02 // to 0xE0: the pair has not closed yet
)

// maxJudgementLen bounds the JSON of a Judgement a Client accepts.
const maxJudgementLen = 1 << 16

// request is one decoded control byte.
type request struct {
	// Byte is the byte as received.
	Byte byte
	// Op is what the byte asks for.
	Op op
	// Slow is the family whose handshakes are slow, 4 or 6 (pairs only).
	Slow int
	// SamePort puts both families of a pair on one port number, and makes
	// the reply carry that one port.
	SamePort bool
	// Port is the IPv4 port a judgement request names (read after the
	// byte, by the server).
	Port uint16
}

// Fast is the family whose handshakes are fast, 4 or 6 (pairs only).
func (r request) Fast() int {
	if r.Slow == 4 {
		return 6
	}
	return 4
}

// errUnknownRequest is returned, wrapped, by
// parseRequest for a byte that is not part of the protocol.
var errUnknownRequest = errors.New("happyeyeballs: unknown request")

// parseRequest decodes the single byte a client sends on a
// Happy Eyeballs control connection: 0x04 and 0x06 ask for a pair whose IPv4
// or IPv6 side is slow, 0x14 and 0x16 the same on one port number, 0xF0 is a
// readiness ping, 0xFF a shutdown, and 0xE0 (followed by two bytes of port,
// which the server reads next) asks for a pair's judgement. It is pure, so the protocol can be
// tested and fuzzed without sockets; any other byte yields an error wrapping
// errUnknownRequest.
func parseRequest(b byte) (request, error) {
	r := request{Byte: b, Op: opPair}
	switch b {
	case reqSlow4, reqSlow6:
		r.Slow = int(b)
	case reqSame4, reqSame6:
		r.Slow, r.SamePort = int(b&0x0F), true
	case reqPing:
		r.Op = opPing
	case reqShutdown:
		r.Op = opShutdown
	case reqJudge:
		r.Op = opJudge
	default:
		return request{Byte: b}, fmt.Errorf("%w: 0x%02x", errUnknownRequest, b)
	}
	return r, nil
}

// encodeReply encodes the answer to a request: 0x01 alone for a ping or a
// shutdown, 0x01 and the two ports for a pair (IPv4 then IPv6, big-endian),
// 0x01 and the one port for a same-port pair.
func encodeReply(r request, port4, port6 uint16) []byte {
	b := []byte{replyOK}
	if r.Op != opPair {
		return b
	}

	b = binary.BigEndian.AppendUint16(b, port4)
	if !r.SamePort {
		b = binary.BigEndian.AppendUint16(b, port6)
	}
	return b
}

// familyName names a family in logs.
func familyName(family int) string {
	if family == 4 {
		return "ipv4"
	}
	return "ipv6"
}

// stampLayout is RFC 3339 with nanoseconds, all nine digits always, so
// that log lines line up and sort as text.
const stampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// stamp formats an absolute time for the logs; "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(stampLayout)
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// encodeJudgement encodes the answer to a judgement request for a closed
// pair: 0x01, the JSON's length (4 bytes, big-endian), the JSON.
func encodeJudgement(j Judgement) []byte {
	js, err := json.Marshal(j)
	if err != nil { // a Judgement always marshals
		panic(fmt.Sprintf("happyeyeballs: marshal judgement: %v", err))
	}
	b := binary.BigEndian.AppendUint32([]byte{replyOK}, uint32(len(js)))
	return append(b, js...)
}
