package happyeyeballs

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synhold/synhold/listener"
)

// samePortTries is how many port numbers a same-port pair tries before it
// gives up: a port free on 127.0.0.1 may be taken on ::1.
const samePortTries = 8

// pair is one port pair: an IPv4 and an IPv6 held listener, each released
// at its own instant, the first connection on either winning.
type pair struct {
	s   *Server
	id  uint64
	req Request
	log *slog.Logger

	sides   [2]*side  // IPv4, IPv6
	boundAt time.Time // when both were bound; set before the pair starts
	bound   atomic.Int64
	won     atomic.Bool
	timer   *time.Timer // PairTimeout; guarded by s.mu

	closeOnce sync.Once
}

// side is one family of a pair.
type side struct {
	family int
	ln     heldListener
	want   time.Time // when its handshakes complete
}

func (sd *side) port() uint16 { return sd.ln.AddrPort().Port() }

// openPair binds a pair for req, schedules its releases from the bind, and
// starts serving it. The caller replies with its ports.
func (s *Server) openPair(req Request, from string) (*pair, error) {
	p := s.newPair(req)
	if err := p.bind(); err != nil {
		return nil, fmt.Errorf("open pair %d: %w", p.id, err)
	}
	p.schedule()
	if !s.addPair(p) {
		p.closeListeners()
		return nil, errClosed
	}
	p.logRequested(from)
	for _, sd := range p.sides {
		go p.serveSide(sd)
	}
	return p, nil
}

func (s *Server) newPair(req Request) *pair {
	s.mu.Lock()
	s.lastID++
	id := s.lastID
	s.mu.Unlock()
	return &pair{s: s, id: id, req: req, log: s.log.With("pair", id)}
}

// addPair registers p and arms its timeout; false once the server is
// stopping.
func (s *Server) addPair(p *pair) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.pairs[p] = struct{}{}
	s.wg.Add(len(p.sides))
	p.timer = time.AfterFunc(s.cfg.PairTimeout, func() { p.close("timeout: nobody connected") })
	return true
}

// removePair forgets p and returns its timer.
func (s *Server) removePair(p *pair) *time.Timer {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pairs, p)
	return p.timer
}

// bind opens both listeners: on two ports, or on one port number for both
// families, retrying with another number while ::1 has it taken.
func (p *pair) bind() error {
	if !p.req.SamePort {
		return p.bindPorts(false)
	}
	var err error
	for range samePortTries {
		if err = p.bindPorts(true); !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
	}
	return fmt.Errorf("one port for both families, %d tries: %w", samePortTries, err)
}

// bindPorts opens the IPv4 listener on 127.0.0.1, then the IPv6 one on ::1,
// on the same port number if same.
func (p *pair) bindPorts(same bool) error {
	v4, err := p.listen(4, "127.0.0.1:0")
	if err != nil {
		return err
	}
	port6 := 0
	if same {
		port6 = int(v4.AddrPort().Port())
	}
	v6, err := p.listen(6, net.JoinHostPort("::1", strconv.Itoa(port6)))
	if err != nil {
		v4.Close()
		return err
	}
	p.sides = [2]*side{{family: 4, ln: v4}, {family: 6, ln: v6}}
	return nil
}

// listen opens one held listener of family on address; it holds every
// handshake until schedule says when.
func (p *pair) listen(family int, address string) (heldListener, error) {
	network := "tcp" + strconv.Itoa(family)
	cfg := listener.Config{Strategy: p.s.cfg.Strategy, OnEvent: p.onEvent(family)}
	ln, err := p.s.listen(network, address, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, address, err)
	}
	return ln, nil
}

// schedule sets each side's release instant from now, the time both are
// bound: the fast side FastDelay after it, the slow side SlowDelay after.
func (p *pair) schedule() {
	now := time.Now()
	p.boundAt = now
	p.bound.Store(now.UnixNano())
	for _, sd := range p.sides {
		sd.want = now.Add(p.delay(sd.family))
		sd.ln.ReleaseAt(sd.want)
	}
}

// delay is how long after the bind family's handshakes complete.
func (p *pair) delay(family int) time.Duration {
	if family == p.req.Slow {
		return p.s.cfg.SlowDelay
	}
	return p.s.cfg.FastDelay
}

// serveSide accepts connections on one side until the pair closes.
func (p *pair) serveSide(sd *side) {
	defer p.s.wg.Done()
	for {
		c, err := sd.ln.Accept()
		if err != nil {
			p.close(fmt.Sprintf("accept on %s: %v", familyName(sd.family), err))
			return
		}
		p.connected(sd, c)
	}
}

// connected hands the first connection of the pair its family byte and
// closes the pair; any later connection is closed at once.
func (p *pair) connected(sd *side, c net.Conn) {
	at := time.Now()
	if !p.won.CompareAndSwap(false, true) {
		p.log.Info("extra connection closed", "family", familyName(sd.family), "client", c.RemoteAddr().String())
		c.Close()
		return
	}
	p.logConnected(sd, c, at)
	if err := writeReply(c, []byte{FamilyByte(sd.family)}, time.Second); err != nil {
		p.log.Warn("family byte not sent", "family", familyName(sd.family), "err", err)
	}
	p.close("connected over " + familyName(sd.family))
	linger(c, lingerMax)
}

// close closes both listeners, once; why goes to the log.
func (p *pair) close(why string) {
	p.closeOnce.Do(func() {
		if t := p.s.removePair(p); t != nil {
			t.Stop()
		}
		p.closeListeners()
		p.log.Info("pair closed", "why", why, "after_ms", millis(time.Since(p.boundAt)))
	})
}

func (p *pair) closeListeners() {
	for _, sd := range p.sides {
		sd.ln.Close()
	}
}

func (p *pair) logRequested(from string) {
	p.log.Info("pair requested",
		"request", hexByte(p.req.Byte), "from", from,
		"strategy", p.sides[0].ln.Strategy().String(),
		"ipv4_port", p.sides[0].port(), "ipv6_port", p.sides[1].port(),
		"slow", familyName(p.req.Slow),
		"fast_ms", millis(p.s.cfg.FastDelay), "slow_ms", millis(p.s.cfg.SlowDelay))
}

// logConnected logs the winning connection, with how late its handshake
// was against the instant asked for, when the listener saw it.
func (p *pair) logConnected(sd *side, c net.Conn, at time.Time) {
	attrs := []any{
		"family", familyName(sd.family), "client", c.RemoteAddr().String(),
		"after_bind_ms", millis(at.Sub(p.boundAt)), "want_ms", millis(p.delay(sd.family)),
	}
	if hs, ok := sd.ln.Handshake(remoteAddrPort(c)); ok {
		attrs = append(attrs, "handshake_late_us", hs.Late().Microseconds(),
			"syns", len(hs.SYNs), "synack_seen", !hs.SYNACK.IsZero())
	} else {
		attrs = append(attrs, "accept_late_us", at.Sub(sd.want).Microseconds())
	}
	p.log.Info("connected", attrs...)
}

// onEvent returns the listener callback of one side: one log line per
// event. It runs on the listener's goroutines, so it only logs: it must
// never close a listener.
func (p *pair) onEvent(family int) func(listener.Event) {
	fam := familyName(family)
	return func(e listener.Event) {
		switch e.Kind {
		case listener.SYNSeen:
			p.log.Info("syn seen", "family", fam, "client", e.Client.String(),
				"syn_ms", p.sinceBind(e.Time), "retransmit", e.Retransmit)
		case listener.Released:
			p.logReleased(fam, e)
		case listener.SYNACKSent:
			p.log.Info("syn-ack sent", "family", fam, "client", e.Client.String(),
				"synack_ms", p.sinceBind(e.Time), "late_us", e.Late().Microseconds())
		}
	}
}

func (p *pair) logReleased(fam string, e listener.Event) {
	attrs := []any{"family", fam, "late_us", e.Late().Microseconds(), "replayed", e.Replayed}
	if e.Client.IsValid() {
		attrs = append(attrs, "client", e.Client.String())
	}
	if e.Err != nil {
		p.log.Warn("released", append(attrs, "err", e.Err)...)
		return
	}
	p.log.Info("released", attrs...)
}

// sinceBind is t as milliseconds after the pair was bound.
func (p *pair) sinceBind(t time.Time) float64 {
	return millis(t.Sub(time.Unix(0, p.bound.Load())))
}

// remoteAddrPort is c's peer address, zero if it is not TCP.
func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
