package proxy

import (
	"errors"
	"fmt"

	"github.com/synhold/synhold/listener"
)

// probeSupport says which handshake toxics proxies can run with strategy.
func probeSupport(strategy listener.Strategy) (support, error) {
	switch strategy {
	case listener.Auto:
		if s, err := listener.Probe(); s != listener.Replay {
			return support{strategy: listener.Retransmit, perConn: needsRawCap(err)}, nil
		}
		return support{strategy: listener.Replay}, nil
	case listener.Replay:
		if _, err := listener.Probe(); err != nil {
			return support{}, fmt.Errorf("proxy: strategy replay: %w", err)
		}
		return support{strategy: listener.Replay}, nil
	case listener.Retransmit:
		return support{strategy: listener.Retransmit, perConn: needsRawCap(errors.New("strategy retransmit was asked for"))}, nil
	}
	return support{}, fmt.Errorf("proxy: strategy %v cannot hold a handshake again once released: want auto, replay or retransmit", strategy)
}

// needsRawCap explains what is missing without strategy replay.
func needsRawCap(why error) error {
	return fmt.Errorf("needs CAP_NET_RAW (strategy replay), which this proxy runs without (%v): "+
		"run it as root or grant the capability (setcap cap_net_raw+ep handshake-proxy); without it only "+
		"handshake_hold with toxicity 1 works, and a released handshake completes at the client's next SYN retransmission", why)
}

// listenGate opens a proxy's held listener.
func listenGate(network, address string, cfg gateConfig) (gate, error) {
	lc := listener.Config{Strategy: cfg.strategy, OnEvent: cfg.onEvent}
	if decide := cfg.decide; decide != nil {
		lc.Decide = func(s listener.SYN) listener.Verdict {
			v := decide(s.Time)
			return listener.Verdict{At: v.at, Refuse: v.refuse}
		}
	}
	h, err := listener.Listen(network, address, lc)
	if err != nil {
		return nil, err
	}
	return h, nil
}
