package capture

import (
	"time"
)

// Packet is one handshake segment as a capture socket saw it.
type Packet struct {
	Segment
	// Time is the kernel's receive (or, for Outgoing, transmit) time.
	Time time.Time
	// Outgoing is true for a packet this host sent.
	Outgoing bool
	// Loopback is true for a packet seen on a loopback interface, where
	// every packet is seen twice: sent (Outgoing), then received.
	Loopback bool
	// Ifindex is the interface the packet was seen on.
	Ifindex int
	// IP is the packet from its IP header on. It is only valid until the
	// next ReadPacket; copy it to keep it.
	IP []byte
}

// Config says what a capture socket listens to.
type Config struct {
	// Ifindex is the interface to capture on; 0 captures on every interface.
	Ifindex int
	// SkipIfindex, if not 0, makes the filter drop every packet of that
	// interface, for a socket on every interface (Ifindex 0) that leaves one
	// interface to a socket bound to it, such as the loopback device (1).
	// The kernel drops them before they are queued: the reader is not woken
	// for them, as it would be if it dropped them itself.
	SkipIfindex int
	// IgnoreMark makes the filter drop packets carrying this SO_MARK, so that
	// segments a program injects itself are not seen again. 0 ignores none.
	IgnoreMark uint32
}
