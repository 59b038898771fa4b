package proxy

import (
	"net"
	"time"

	"github.com/synhold/synhold/listener"
)

// gate is the listener a proxy accepts on: a held listener, as the proxy
// uses it. Hold, Release and ReleaseHeld are listener.Held's.
type gate interface {
	Accept() (net.Conn, error)
	Close() error
	Addr() net.Addr
	// Hold holds the SYNs that arrive from now on: each is decided (with
	// gateConfig.decide) or, without decide, held until Release.
	Hold() error
	// Release stops holding: every pending handshake completes now.
	Release()
	// ReleaseHeld completes now the handshakes held without an instant and
	// keeps holding.
	ReleaseHeld()
	// Strategy is how the gate holds handshakes.
	Strategy() listener.Strategy
}

// gateConfig is how a proxy opens its gate.
type gateConfig struct {
	strategy listener.Strategy
	// decide, if set, says what becomes of each new connection, from the
	// kernel time of its first SYN; it runs on the capture path. Needs
	// strategy Replay. Without it the gate holds every SYN until Release.
	decide func(syn time.Time) verdict
	// onEvent gets the listener's events, in order.
	onEvent func(listener.Event)
}

// openGate opens a proxy's listener; per OS. A variable for fault injection.
var openGate = listenGate
