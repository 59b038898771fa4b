package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HappyEyeballsOp is what a Happy Eyeballs control request asks for.
type HappyEyeballsOp uint8

const (
	// HappyEyeballsPair asks for a port pair with one slow family.
	HappyEyeballsPair HappyEyeballsOp = iota + 1
	// HappyEyeballsPing asks whether the server is ready (what --wait sends).
	HappyEyeballsPing
	// HappyEyeballsShutdown asks the server to shut down (what --stop sends).
	HappyEyeballsShutdown
)

var heOpNames = [...]string{"", "pair", "ping", "shutdown"}

func (o HappyEyeballsOp) String() string {
	if int(o) >= len(heOpNames) || o == 0 {
		return fmt.Sprintf("HappyEyeballsOp(%d)", int(o))
	}
	return heOpNames[o]
}

// The control protocol's bytes.
const (
	heReqSlow4     = 0x04 // pair, IPv4 slow, two port numbers
	heReqSlow6     = 0x06 // pair, IPv6 slow, two port numbers
	heReqSame4     = 0x14 // pair, IPv4 slow, one port number for both
	heReqSame6     = 0x16 // pair, IPv6 slow, one port number for both
	heReqPing      = 0xF0
	heReqShutdown  = 0xFF
	heReplyOK      = 0x01
	heReplyFailure = 0x00
)

// HappyEyeballsRequest is one decoded control byte.
type HappyEyeballsRequest struct {
	// Byte is the byte as received.
	Byte byte
	// Op is what the byte asks for.
	Op HappyEyeballsOp
	// Slow is the family whose handshakes are slow, 4 or 6 (pairs only).
	Slow int
	// SamePort puts both families of a pair on one port number, and makes
	// the reply carry that one port.
	SamePort bool
}

// Fast is the family whose handshakes are fast, 4 or 6 (pairs only).
func (r HappyEyeballsRequest) Fast() int {
	if r.Slow == 4 {
		return 6
	}
	return 4
}

// ErrUnknownHappyEyeballsRequest is returned, wrapped, by
// ParseHappyEyeballsRequest for a byte that is not part of the protocol.
var ErrUnknownHappyEyeballsRequest = errors.New("broker: unknown happy eyeballs request")

// ParseHappyEyeballsRequest decodes the single byte a client sends on a
// Happy Eyeballs control connection: 0x04 and 0x06 ask for a pair whose IPv4
// or IPv6 side is slow, 0x14 and 0x16 the same on one port number, 0xF0 is a
// readiness ping and 0xFF a shutdown. It is pure, so the protocol can be
// tested and fuzzed without sockets; any other byte yields an error wrapping
// ErrUnknownHappyEyeballsRequest.
func ParseHappyEyeballsRequest(b byte) (HappyEyeballsRequest, error) {
	r := HappyEyeballsRequest{Byte: b, Op: HappyEyeballsPair}
	switch b {
	case heReqSlow4, heReqSlow6:
		r.Slow = int(b)
	case heReqSame4, heReqSame6:
		r.Slow, r.SamePort = int(b&0x0F), true
	case heReqPing:
		r.Op = HappyEyeballsPing
	case heReqShutdown:
		r.Op = HappyEyeballsShutdown
	default:
		return HappyEyeballsRequest{Byte: b}, fmt.Errorf("%w: 0x%02x", ErrUnknownHappyEyeballsRequest, b)
	}
	return r, nil
}

// heReply encodes the answer to a request: 0x01 alone for a ping or a
// shutdown, 0x01 and the two ports for a pair (IPv4 then IPv6, big-endian),
// 0x01 and the one port for a same-port pair.
func heReply(r HappyEyeballsRequest, port4, port6 uint16) []byte {
	b := []byte{heReplyOK}
	if r.Op != HappyEyeballsPair {
		return b
	}
	b = binary.BigEndian.AppendUint16(b, port4)
	if !r.SamePort {
		b = binary.BigEndian.AppendUint16(b, port6)
	}
	return b
}

// heFamilyByte is the byte a pair's first connection reads: 0x04 on IPv4,
// 0x06 on IPv6.
func heFamilyByte(family int) byte { return byte(family) }

// heFamilyName names a family in logs.
func heFamilyName(family int) string {
	if family == 4 {
		return "ipv4"
	}
	return "ipv6"
}
