package reconnect

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/synhold/synhold/internal/eventlog"
	"github.com/synhold/synhold/internal/netaddr"
	"github.com/synhold/synhold/listener"
	"github.com/synhold/synhold/listener/capture"
)

// portTries is how often a free retry port is looked for when port 0 is
// free on IPv4 but taken on IPv6.
const portTries = 8

// openRetry opens the retry port on both families, once; a failed attempt
// is tried again by the next Start.
func (r *Server) openRetry() error {
	r.listenMu.Lock()
	defer r.listenMu.Unlock()
	if len(r.lns) > 0 {
		return nil
	}
	if r.closed() {
		return errors.New("server shutting down")
	}
	lns, err := r.listenBoth(r.RetryPort())
	if err != nil {
		return err
	}
	port := int(lns[0].AddrPort().Port())
	r.mu.Lock()
	r.port = port
	r.mu.Unlock()
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		if r.cfg.Stall == 0 {
			ln.Release() // answer every SYN at once
		}
		addrs[i] = ln.AddrPort().String()
		r.wg.Add(1)
		go r.serveRetry(ln)
	}
	r.lns = lns
	r.log.Info("reconnect: retry port listening", "port", port, "addrs", addrs,
		"strategy", lns[0].Strategy(), "stall", r.cfg.Stall)
	return nil
}

// listenBoth opens the retry listeners on 0.0.0.0 and [::] with one port
// number. Without IPv6 it makes do with IPv4.
func (r *Server) listenBoth(port int) ([]*listener.Held, error) {
	cfg := listener.Config{Strategy: r.strategy, After: r.cfg.Stall, OnEvent: r.onEvent}
	for range portTries {
		v4, err := r.cfg.listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)), cfg)
		if err != nil {
			return nil, fmt.Errorf("listen on 0.0.0.0:%d: %w", port, err)
		}
		p := strconv.Itoa(int(v4.AddrPort().Port()))
		v6, err := r.cfg.listen("tcp6", net.JoinHostPort("::", p), cfg)
		switch {
		case err == nil:
			return []*listener.Held{v4, v6}, nil
		case noIPv6(err):
			r.log.Warn("reconnect: no IPv6; the retry port listens on IPv4 only", "err", err)
			return []*listener.Held{v4}, nil
		case port == 0 && errors.Is(err, syscall.EADDRINUSE):
			v4.Close() // the port is taken on IPv6: pick another
		default:
			v4.Close()
			return nil, fmt.Errorf("listen on [::]:%s: %w", p, err)
		}
	}
	return nil, fmt.Errorf("no port free on both 0.0.0.0 and [::] after %d tries", portTries)
}

// noIPv6 reports whether err says the host has no IPv6.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) ||
		errors.Is(err, syscall.EPROTONOSUPPORT)
}

// serveRetry accepts connections on ln and closes each at once, recording
// when accept returned it.
func (r *Server) serveRetry(ln *listener.Held) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || r.closed() {
				return
			}
			r.log.Warn("reconnect: accept on the retry port failed", "addr", ln.AddrPort(), "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on EMFILE
			continue
		}
		src, dst := addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
		c.Close()
		r.onAccept(src, dst, at)
	}
}

// onEvent takes the retry listeners' events: SYNs are attempts, SYNs and
// SYN-ACKs go to the pcap file, and a failed release or a listener's fault
// is logged.
func (r *Server) onEvent(e listener.Event) {
	switch e.Kind {
	case listener.SYNSeen:
		r.pcap.write(e.Time, e.IP)
		r.onSYN(e)
	case listener.SYNACKSent:
		r.pcap.write(e.Time, e.IP)
	case listener.Released:
		if e.Err != nil {
			r.log.Warn("reconnect: a held handshake was not released as planned", "client", e.Client, "err", e.Err)
		}
	case listener.Fault:
		// e.Err says what failed and what the listener does now.
		eventlog.At(r.log, slog.LevelError, e.Time, "reconnect: retry port's listener failed", "err", e.Err)
	}
}

// onSYN records a SYN of the retry port in the test in progress.
func (r *Server) onSYN(e listener.Event) {
	dst := e.Local
	if seg, err := capture.Decode(e.IP); err == nil {
		dst = seg.Dst // Local is the listener's wildcard address
	}
	src := netaddr.Canonical(e.Client)
	r.mu.Lock()
	t := r.test
	if t == nil {
		r.mu.Unlock()
		r.log.Debug("reconnect: SYN outside a test, ignored", "src", src, "dst", dst)
		return
	}
	a, fresh := t.syn(src, netaddr.Canonical(dst), e.ISN, e.Time, e.Retransmit)
	var (
		line  attemptLine
		after time.Duration
	)
	switch {
	case fresh && r.ts == SYN:
		line = t.live(a)
	case a != nil:
		after = e.Time.Sub(a.synAt)
	}
	r.mu.Unlock()
	switch {
	case a == nil:
		r.log.Debug("reconnect: retransmitted SYN of a connection begun before the test, ignored", "src", src, "isn", e.ISN)
	case !fresh:
		eventlog.At(r.log, slog.LevelInfo, e.Time, "reconnect: retransmitted SYN, not an attempt", "test", t.n, "src", src, "isn", e.ISN,
			"after_ms", millis(after))
	case r.ts == SYN:
		line.log(r.log)
	}
}

// onAccept records an accepted connection of the retry port in the test in
// progress.
func (r *Server) onAccept(src, dst netip.AddrPort, at time.Time) {
	r.mu.Lock()
	t := r.test
	if t == nil {
		r.mu.Unlock()
		r.log.Debug("reconnect: connection outside a test, closed", "src", src, "dst", dst)
		return
	}
	a := t.accept(src, dst, at)
	var line attemptLine
	if r.ts == Accept {
		line = t.live(a)
	}
	synAt := a.synAt
	r.mu.Unlock()
	if r.ts == Accept {
		line.log(r.log)
		return
	}
	if !synAt.IsZero() {
		r.log.Debug("reconnect: accepted", "test", t.n, "src", src, "syn_to_accept_ms", millis(at.Sub(synAt)))
	}
}

// pcapWriter writes handshake packets to a pcap file from several goroutines,
// and gives up, once logged, on the first write error.
type pcapWriter struct {
	mu  sync.Mutex
	w   *capture.Writer
	err error
	log *slog.Logger
}

// newPcapWriter writes the pcap header to w.
func newPcapWriter(w io.Writer, log *slog.Logger) (*pcapWriter, error) {
	cw, err := capture.NewWriter(w)
	if err != nil {
		return nil, fmt.Errorf("reconnect: pcap: %w", err)
	}
	return &pcapWriter{w: cw, log: log}, nil
}

// write adds one packet; a nil p or packet does nothing.
func (p *pcapWriter) write(t time.Time, ip []byte) {
	if p == nil || len(ip) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if p.err = p.w.WritePacket(t, ip); p.err != nil {
		p.log.Error("reconnect: pcap write failed; no more packets are written", "err", p.err)
	}
}
