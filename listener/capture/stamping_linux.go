package capture

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// stampingLimit bounds how long Open waits for the kernel to stamp packets
// as it receives them.
const stampingLimit = 2 * time.Second

// stampedOnArrival is the seam through which waitStamping asks whether the
// kernel stamps received packets on arrival; tests replace it.
var stampedOnArrival = probeStamping

// waitStamping returns once the kernel stamps received packets when they
// arrive, or after limit. Until then it does not: while no socket of the
// host has asked for receive stamps, the kernel's static key for them is
// off, and the first SO_TIMESTAMPNS only schedules its switch on a
// workqueue (net_enable_timestamp, with jump labels). A packet received in
// between carries no stamp, and recvmsg gives it the time of the read
// instead ("Race occurred between timestamp enabling and packet receiving"
// in __sock_recv_timestamp): a SYN that came in that window, for a listener
// opened just before a client dialled, would be reported late by however
// long the capture took to read it. It reports whether stamping is on; a
// probe that cannot run (lo down in a new network namespace) counts as on,
// there being nothing to wait for that it could see.
func waitStamping(limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; {
		on, err := stampedOnArrival()
		if on || err != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Microsecond) // the switch is a kernel work item
	}
}

// probeStamping sends a datagram over lo to a socket of its own with
// SO_TIMESTAMPNS and reads it back: stamping is on when the stamp comes
// before the send returned (lo receives inside the send), not at the read.
func probeStamping() (bool, error) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return false, err
	}
	defer rx.Close()
	rc, err := rx.SyscallConn()
	if err != nil {
		return false, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return false, err
	}
	if serr != nil {
		return false, serr
	}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return false, err
	}
	defer tx.Close()
	if _, err := tx.Write([]byte{0}); err != nil {
		return false, err
	}
	sent := time.Now()
	_ = rx.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	oob := make([]byte, 64)
	_, oobn, _, _, err := rx.ReadMsgUDP(b[:], oob)
	if err != nil {
		return false, err
	}
	stamp, ok := stampIn(oob[:oobn])
	return ok && !stamp.After(sent), nil
}
