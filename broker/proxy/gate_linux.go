package proxy

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/internal/sockopt"
	"github.com/synhold/synhold/listener"
)

// probeSupport says which handshake toxics proxies can run with strategy.
func probeSupport(strategy listener.Strategy) (support, error) {
	switch strategy {
	case listener.Auto:
		if s, err := listener.Probe(); s != listener.Replay {
			return support{strategy: listener.Retransmit, perConn: needsRawCap(err)}, nil
		}
		if err := filterRefused(); err != nil {
			return support{strategy: listener.Retransmit, perConn: needsFilter(err)}, nil
		}
		return support{strategy: listener.Replay}, nil
	case listener.Replay:
		if _, err := listener.Probe(); err != nil {
			return support{}, fmt.Errorf("proxy: strategy replay: %w", err)
		}
		if err := filterRefused(); err != nil {
			return support{}, fmt.Errorf("proxy: strategy replay: %w", needsFilter(err))
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

// filterRefused says why the kernel refuses this process the socket filter
// that holds SYNs one connection at a time, or nil: where
// kernel.unprivileged_bpf_disabled is set, classic socket filters need
// CAP_NET_ADMIN, which a container with Docker's default capabilities does
// not have although it has CAP_NET_RAW. A variable for fault injection.
var filterRefused = func() error {
	// A TCP socket, as the listeners': some kernels let UDP sockets have
	// a filter where they refuse TCP sockets one.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil // the proxy's own listeners will say what is wrong
	}
	f := os.NewFile(uintptr(fd), "filter probe")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	if err := sockopt.AttachFilter(rc, replay.HoldFilter()); errors.Is(err, os.ErrPermission) {
		return err
	}
	return nil
}

// needsFilter explains what is missing when socket filters are refused.
func needsFilter(why error) error {
	return fmt.Errorf("needs CAP_NET_ADMIN for its socket filter, which this kernel (kernel.unprivileged_bpf_disabled) "+
		"refuses without it (%v): run it as root with every capability, or in a container with --cap-add NET_ADMIN; "+
		"without it only handshake_hold with toxicity 1 works, and a released handshake completes at the client's next SYN retransmission", why)
}

// listenGate opens a proxy's held listener. It is quiet: while no
// handshake toxic is set (released), its connections cost no capture
// wake-up, and Hold puts its port back in the capture before the hold, so
// that a SYN that arrives once the toxic-add call returned is seen.
func listenGate(network, address string, cfg gateConfig) (gate, error) {
	lc := listener.Config{Strategy: cfg.strategy, OnEvent: cfg.onEvent, Quiet: true}
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
