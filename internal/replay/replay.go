// Package replay holds the pieces of a held listener's replay that more than
// one package of this module needs: the mark replayed SYNs carry, the hold
// filter that lets only them through, the raw socket they are sent on and
// its destination address.
package replay

import (
	"encoding/binary"
	"net/netip"
)

// Mark is the SO_MARK of replayed SYNs ("SYNH"): the hold filter lets them
// through, and a capture configured to ignore it does not see them again.
const Mark = 0x53594e48

// RST returns the IP packet that refuses a client's SYN: a TCP RST|ACK from
// local to client acknowledging isn+1, so that the client's connect(2)
// fails with ECONNREFUSED, as if nothing listened on local. The checksums
// are filled in; it is sent on a Socket of local's family.
func RST(local, client netip.AddrPort, isn uint32) []byte {
	var b []byte
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], local.Port())
	binary.BigEndian.PutUint16(tcp[2:], client.Port())
	binary.BigEndian.PutUint32(tcp[8:], isn+1)
	tcp[12] = 5 << 4      // data offset: 5 words
	tcp[13] = 0x04 | 0x10 // RST|ACK
	var sum uint32
	if local.Addr().Is4() {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 40)
		ip[6] = 0x40 // don't fragment
		ip[8] = 64
		ip[9] = 6
		src, dst := local.Addr().As4(), client.Addr().As4()
		copy(ip[12:], src[:])
		copy(ip[16:], dst[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sumBytes(ip)))
		sum = sumBytes(ip[12:20]) + 6 + 20
		b = append(ip, tcp...)
	} else {
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], 20)
		ip[6] = 6
		ip[7] = 64
		src, dst := local.Addr().As16(), client.Addr().As16()
		copy(ip[8:], src[:])
		copy(ip[24:], dst[:])
		sum = sumBytes(ip[8:40]) + 6 + 20
		b = append(ip, tcp...)
	}
	t := b[len(b)-20:]
	binary.BigEndian.PutUint16(t[16:], ^fold(sum+sumBytes(t)))
	return b
}

func sumBytes(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
