package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/internal/replay"
	"github.com/synhold/synhold/listener/capture"
)

// sniffer is the benchmark's own capture socket on lo: it times every
// client's first SYN and the first SYN-ACK answering it from the kernel's
// timestamps, independently of the listeners under test.
type sniffer struct {
	sock *capture.Socket
	done chan struct{}

	mu      sync.Mutex
	flows   map[netip.AddrPort]*sniffed // by client address, latest connection
	changed chan struct{}               // closed and replaced on every packet
	err     error                       // why the reader stopped
}

// sniffed is what the sniffer saw of one connection.
type sniffed struct {
	isn  uint32
	syn  time.Time // the first SYN
	syns int       // SYNs seen, replays and retransmissions included
	ip   []byte    // the first SYN, from its IP header on
	// synack is the first SYN-ACK answering it as it arrived (on lo the
	// capture sees each packet twice: sent, then received), the copy the
	// client and tcpdump see; synackSent is the same packet as it was sent.
	synack, synackSent time.Time
}

// openSniffer opens the capture socket on the loopback interface.
func openSniffer() (*sniffer, error) {
	lo, err := loopback()
	if err != nil {
		return nil, err
	}
	// Replayed SYNs are left out: they are not needed, and delivering them
	// to this socket would wake its reader in the middle of the release
	// being measured (the listener's own capture ignores them too).
	sock, err := capture.Open(capture.Config{Ifindex: lo, IgnoreMark: replay.Mark})
	if err != nil {
		return nil, err
	}
	s := &sniffer{sock: sock, done: make(chan struct{}), flows: make(map[netip.AddrPort]*sniffed), changed: make(chan struct{})}
	go s.read()
	return s, nil
}

// loopback returns the index of the loopback interface.
func loopback() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			return i.Index, nil
		}
	}
	return 0, errors.New("no loopback interface")
}

func (s *sniffer) read() {
	defer close(s.done)
	for {
		p, err := s.sock.ReadPacket()
		if err != nil {
			s.mu.Lock()
			if !errors.Is(err, os.ErrClosed) {
				s.err = err
			}
			s.mu.Unlock()
			return
		}
		s.record(p)
	}
}

// record notes a SYN or SYN-ACK and wakes the waiters.
func (s *sniffer) record(p capture.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p.IsSYN() && !p.Outgoing:
		c := netaddr.Canonical(p.Src)
		f := s.flows[c]
		if f == nil || f.isn != p.Seq {
			f = &sniffed{isn: p.Seq, syn: p.Time}
			s.flows[c] = f
		}
		if f.syns == 0 {
			f.ip = slices.Clone(p.IP)
		}
		f.syns++
	case p.IsSYNACK():
		f := s.flows[netaddr.Canonical(p.Dst)]
		if f == nil || p.Ack != f.isn+1 {
			return
		}
		first := &f.synack
		if p.Outgoing {
			first = &f.synackSent
		}
		if !first.IsZero() {
			return
		}
		*first = p.Time
	default:
		return
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until cond holds for client's connection, or deadline.
func (s *sniffer) wait(client netip.AddrPort, deadline time.Time, what string, cond func(*sniffed) bool) (sniffed, error) {
	client = netaddr.Canonical(client)
	var got sniffed
	err := waitUntil(deadline, func() (bool, <-chan struct{}, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if f, ok := s.flows[client]; ok && cond(f) {
			got = *f
			return true, nil, nil
		}
		if s.err != nil {
			return false, nil, fmt.Errorf("capture stopped: %w", s.err)
		}
		return false, s.changed, nil
	})
	if errors.Is(err, errLate) {
		err = fmt.Errorf("no %s from %v seen in time", what, client)
	}
	return got, err
}

// waitSYN returns the connection from client once its SYN was seen.
func (s *sniffer) waitSYN(client netip.AddrPort, deadline time.Time) (sniffed, error) {
	return s.wait(client, deadline, "SYN", func(*sniffed) bool { return true })
}

// waitSYNACK returns the connection from client once a SYN-ACK answered it.
func (s *sniffer) waitSYNACK(client netip.AddrPort, deadline time.Time) (sniffed, error) {
	return s.wait(client, deadline, "SYN-ACK", func(f *sniffed) bool { return !f.synack.IsZero() })
}

// snapshot returns a copy of what was seen of every connection not
// forgotten, by client address.
func (s *sniffer) snapshot() map[netip.AddrPort]sniffed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.AddrPort]sniffed, len(s.flows))
	for c, f := range s.flows {
		out[c] = *f
	}
	return out
}

// forget drops what was seen of client, once a trial is done with it.
func (s *sniffer) forget(client netip.AddrPort) {
	s.mu.Lock()
	delete(s.flows, netaddr.Canonical(client))
	s.mu.Unlock()
}

// close stops the capture.
func (s *sniffer) close() error {
	err := s.sock.Close()
	<-s.done
	return err
}
