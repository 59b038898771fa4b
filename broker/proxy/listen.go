package proxy

import (
	"errors"
	"net"
	"os"
)

// The listen address as toxiproxy 2.12 treats it: resolved to compare it
// (proxy.Differs), and its errors worded as net.Listen's.

// resolveTCP resolves a proxy's listen address, as net.Listen does (a host
// name through the system's resolver). A variable for fault injection, and
// so that the fuzz test resolves no name.
var resolveTCP = func(address string) (*net.TCPAddr, error) { return net.ResolveTCPAddr("tcp", address) }

// differs reports whether a proxy given listen and upstream is another than
// f, as toxiproxy's Proxy.Differs: listen is resolved (a host name to its
// first address, IPv4 first) and compared with the address f listens on (or
// was given, if it never started). An unresolvable listen is an error,
// which the API answers 500 with its text.
func (f *forwarder) differs(listen, upstream string) (bool, error) {
	a, err := resolveTCP(listen)
	if err != nil {
		return false, err
	}
	return f.listen != a.String() || f.upstream != upstream, nil
}

// resolveListen resolves a proxy's listen address before it is opened, with
// net.Listen's error if it cannot be ("listen tcp: address nope: missing
// port in address").
func resolveListen(listen string) (*net.TCPAddr, error) {
	a, err := resolveTCP(listen)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	return a, nil
}

// listenError words a failed bind(2) or listen(2) of the listener at a as
// net.Listen does, so that the API answers toxiproxy's text ("listen tcp
// 127.0.0.1:3310: bind: address already in use"). Any other error (the
// hold's, the capture's) keeps its own words, which say what to do.
func listenError(a *net.TCPAddr, err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) && (se.Syscall == "bind" || se.Syscall == "listen") {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: a, Err: se}
	}
	return err
}
