package proxy

import (
	"errors"
	"net"

	"github.com/synhold/synhold/listener"
)

// errNotYet: the held listener's per-connection API is not in this build.
var errNotYet = errors.New("handshake toxics: the held listener is not wired in yet")

// probeSupport says which handshake toxics proxies can run with strategy.
func probeSupport(strategy listener.Strategy) (support, error) {
	return support{strategy: listener.Auto, perConn: errNotYet, hold: errNotYet}, nil
}

// listenGate opens a proxy's listener.
func listenGate(network, address string, cfg gateConfig) (gate, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return plainGate{ln}, nil
}
