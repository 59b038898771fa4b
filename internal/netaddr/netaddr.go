// Package netaddr converts addresses between the forms this module's
// packages meet them in: netip, the socket addresses of golang.org/x/sys/unix,
// and the canonical form in which connections are looked up.
package netaddr

import "net/netip"

// Canonical is a as a capture decodes it: an IPv4-mapped IPv6 address as
// IPv4, and no zone. Connections are keyed by it.
func Canonical(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}
