package proxy

import (
	"fmt"
	"net/http"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/synhold/synhold/listener"
)

// support says which handshake toxics this host's proxies can run.
type support struct {
	// strategy is what the proxies' listeners use.
	strategy listener.Strategy
	// perConn is why handshakes cannot be decided one connection at a time
	// (handshake_delay, handshake_refuse, a handshake_hold with toxicity
	// below 1); nil if they can.
	perConn error
	// hold is why handshake_hold cannot run at all; nil if it can.
	hold error
}

// check says whether a handshake toxic of type kind with toxicity can run,
// as an API error.
func (s support) check(kind string, toxicity float32) error {
	err := s.perConn
	if kind == typeHold && (toxicity >= 1 || s.hold != nil) {
		err = s.hold
	}
	if err == nil {
		return nil
	}
	if kind == typeHold && s.hold == nil {
		err = fmt.Errorf("toxicity %g: %w", toxicity, err)
	}
	return &toxiproxy.ApiError{Message: kind + ": " + err.Error(), StatusCode: http.StatusNotImplemented}
}

// describe is one log line's worth of what the proxies can do.
func (s support) describe() string {
	switch {
	case s.hold != nil:
		return "no handshake toxics: " + s.hold.Error()
	case s.perConn != nil:
		return "handshake_hold only, completing at each client's next SYN retransmission: " + s.perConn.Error()
	}
	return "every handshake toxic, each handshake completed at its instant"
}
