package listener

import (
	"net"
	"net/netip"
)

// bound is a port reserved for a listener that is not listening yet. Go
// cannot turn a bound Windows socket into a net.Listener, so the port is
// found by listening and closing at once, and taken again at the instant;
// a client's SYN meanwhile is refused, as it is against the original.
type bound struct{ local netip.AddrPort }

func bindOnly(local netip.AddrPort, dual bool) (bound, netip.AddrPort, error) {
	network := "tcp4"
	if local.Addr().Is6() {
		network = "tcp6"
	}
	ln, err := net.Listen(network, local.String())
	if err != nil {
		return bound{}, local, err
	}
	local = ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return bound{local: local}, local, nil
}

func (b *bound) listen() (net.Listener, error) {
	network := "tcp4"
	if b.local.Addr().Is6() {
		network = "tcp6"
	}
	return net.Listen(network, b.local.String())
}

func (b *bound) close() error { return nil }
