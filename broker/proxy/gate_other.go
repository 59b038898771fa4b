//go:build !linux

package proxy

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/synhold/synhold/listener"
)

// probeSupport says which handshake toxics proxies can run: none here.
func probeSupport(strategy listener.Strategy) (support, error) {
	if strategy != listener.Auto {
		return support{}, fmt.Errorf("proxy: strategy %v: handshakes are held on Linux only (this is %s)", strategy, runtime.GOOS)
	}
	err := fmt.Errorf("holding handshakes needs Linux (this is %s): %w", runtime.GOOS, errors.ErrUnsupported)
	return support{strategy: listener.Auto, perConn: err, hold: err}, nil
}

// listenGate opens a proxy's listener: a plain one, which holds nothing.
func listenGate(network, address string, cfg gateConfig) (gate, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return plainGate{ln}, nil
}

// errNoHold is what a gate that cannot hold says.
var errNoHold = fmt.Errorf("this listener cannot hold handshakes: %w", errors.ErrUnsupported)

// plainGate is a listener that holds nothing.
type plainGate struct{ net.Listener }

func (plainGate) Hold() error                 { return errNoHold }
func (plainGate) Release()                    {}
func (plainGate) ReleaseHeld()                {}
func (plainGate) Strategy() listener.Strategy { return listener.Auto }
