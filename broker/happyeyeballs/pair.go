package happyeyeballs

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
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

// eventWait bounds how long the winner's "connected" line waits for the
// listener's events that come before it (the side's release, the SYN-ACK
// of the connection): they travel on another goroutine, and on a loaded
// machine may trail the accept by milliseconds.
const eventWait = time.Second

// reorderWindow is how long a listener event's line waits for lines of
// earlier events from the pair's other side.
const reorderWindow = 2 * time.Millisecond

// timedLine is a log line of an event at a time, waiting to be written.
type timedLine struct {
	at    time.Time
	write func()
}

// pair is one port pair: an IPv4 and an IPv6 held listener, each released
// at its own instant, the first connection on either winning. A pair opened
// ahead of its request (a spare) holds every SYN, with no instant, until
// it is handed out; its clock starts then.
type pair struct {
	s        *Server
	id       uint64
	samePort bool
	log      *slog.Logger

	sides [2]*side // IPv4, IPv6
	won   atomic.Bool
	timer *time.Timer // PairTimeout; guarded by s.mu

	// Set by start, before the pair is served; read by the event callbacks,
	// which may run before (a stray SYN at a spare), hence the lock.
	mu      sync.Mutex
	req     request
	started time.Time // the instant the delays count from; zero for a spare
	replied time.Time // when the reply with its ports went out

	// The winner, for the judgement; set by connected, under mu.
	winner       int
	wonAt        time.Time // its SYN-ACK, else its accept
	acceptedAt   time.Time
	winnerClient string

	// The pair's log lines are written under logMu, in the order of the
	// events. The listener's events wait in pending, sorted by their time,
	// for reorderWindow: the two sides' events come on two goroutines. Lines
	// that come before the "pair requested" line (written once the reply is
	// out, so as not to delay it) wait in queued.
	logMu     sync.Mutex
	announced bool
	queued    []func()
	pending   []timedLine
	flush     *time.Timer

	closeOnce sync.Once
}

// side is one family of a pair, and what its listener reported so far.
type side struct {
	family int
	ln     heldListener
	want   time.Time // when its handshakes complete; set by start

	mu       sync.Mutex
	released bool                         // its Released event came
	faulted  bool                         // a Fault event came: SYN-ACKs may go unseen
	synacks  map[netip.AddrPort]time.Time // kernel times of its SYN-ACKs, by client
	changed  chan struct{}                // closed and replaced whenever the above change
	firstSYN time.Time                    // the first SYN of a new connection (not a retransmission)
	marks    []Mark                       // its events, for the report
}

func (sd *side) port() uint16 { return sd.ln.AddrPort().Port() }

// openPair binds a new pair; samePort puts both families on one port number.
func (s *Server) openPair(samePort bool) (*pair, error) {
	s.mu.Lock()
	s.lastID++
	id := s.lastID
	s.mu.Unlock()
	p := &pair{s: s, id: id, samePort: samePort, log: s.log.With("pair", id)}
	if err := p.bind(); err != nil {
		return nil, fmt.Errorf("open pair %d: %w", p.id, err)
	}
	return p, nil
}

// newPair hands out a pair for req: a spare of the right kind if there is
// one, else one bound now, and starts the pair's clock. The caller replies
// with its ports, then calls announce and serve: what can wait until the
// reply is out waits.
func (s *Server) newPair(req request) (*pair, error) {
	p := s.takeSpare(req.SamePort)
	if p == nil {
		var err error
		if p, err = s.openPair(req.SamePort); err != nil {
			return nil, err
		}
	}
	p.start(req)
	if !s.addPair(p) {
		p.closeListeners()
		return nil, errClosed
	}
	return p, nil
}

// serve accepts connections on both sides, until the pair closes. The
// kernel completes and queues the handshakes meanwhile.
func (p *pair) serve() {
	for _, sd := range p.sides {
		go p.serveSide(sd)
	}
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
	s.byPort[p.sides[0].port()] = p
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
	if !p.samePort {
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
	sd4, sd6 := newSide(4), newSide(6)
	v4, err := p.listen(sd4, "127.0.0.1:0")
	if err != nil {
		return err
	}
	port6 := 0
	if same {
		port6 = int(v4.AddrPort().Port())
	}
	v6, err := p.listen(sd6, net.JoinHostPort("::1", strconv.Itoa(port6)))
	if err != nil {
		v4.Close()
		return err
	}
	sd4.ln, sd6.ln = v4, v6
	p.sides = [2]*side{sd4, sd6}
	return nil
}

func newSide(family int) *side {
	return &side{family: family, synacks: make(map[netip.AddrPort]time.Time), changed: make(chan struct{})}
}

// listen opens one held listener for sd on address; it holds every
// handshake until start says when.
func (p *pair) listen(sd *side, address string) (heldListener, error) {
	network := "tcp" + strconv.Itoa(sd.family)
	cfg := listener.Config{Strategy: p.s.cfg.Strategy, OnEvent: p.onEvent(sd)}
	ln, err := p.s.listen(network, address, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, address, err)
	}
	return ln, nil
}

// start sets each side's release instant from now: the fast side
// FastDelay after it, the slow side SlowDelay after.
func (p *pair) start(req request) {
	now := time.Now()
	p.mu.Lock()
	p.req, p.started = req, now
	p.mu.Unlock()
	for _, sd := range p.sides {
		sd.want = now.Add(p.delay(sd.family))
		sd.ln.ReleaseAt(sd.want)
	}
}

// startedAt is when the pair's clock started; zero for a spare.
func (p *pair) startedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// delay is how long after the start family's handshakes complete.
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

// connected hands the first connection of the pair its family byte, logs
// it once the listener's events before it are logged, and closes the pair;
// any later connection is closed at once.
func (p *pair) connected(sd *side, c net.Conn) {
	at := time.Now()
	if !p.won.CompareAndSwap(false, true) {
		client := c.RemoteAddr().String()
		p.inOrder(func() { p.log.Info("extra connection closed", "family", familyName(sd.family), "client", client) })
		c.Close()
		return
	}
	err := writeReply(c, []byte{FamilyByte(sd.family)}, time.Second)
	client := remoteAddrPort(c)
	_, captured := sd.ln.Handshake(client) // its SYN was seen: its SYN-ACK will be
	synack, seen := sd.waitEvents(client, captured, eventWait)
	hs, _ := sd.ln.Handshake(client)
	if !seen && !hs.SYNACK.IsZero() { // recorded, though its event has not come yet
		synack, seen = hs.SYNACK, true
	}
	p.mu.Lock()
	p.winner, p.wonAt, p.acceptedAt, p.winnerClient = sd.family, at, at, client.String()
	if seen {
		p.wonAt = synack
	}
	p.mu.Unlock()
	p.inOrder(func() {
		p.logConnected(sd, c, at, hs, captured, synack, seen)
		if err != nil {
			p.log.Warn("family byte not sent", "family", familyName(sd.family), "err", err)
		}
	})
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
		now := time.Now()
		p.inOrder(func() {
			p.log.Info("pair closed", "why", why, "closed", stamp(now), "after_ms", millis(now.Sub(p.startedAt())))
		})
		p.judge(why, now)
	})
}

func (p *pair) closeListeners() {
	for _, sd := range p.sides {
		sd.ln.Close()
	}
}

// inOrder writes a log line of the pair by calling f, after the lines of
// the events before it, and after the "pair requested" line.
func (p *pair) inOrder(f func()) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	if !p.announced {
		p.queued = append(p.queued, f)
		return
	}
	p.flushLocked(time.Now())
	f()
}

// inTime has the line of an event at time at written by write, after the
// lines of the events before it, on either side.
func (p *pair) inTime(at time.Time, write func()) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	i := len(p.pending)
	for i > 0 && p.pending[i-1].at.After(at) {
		i--
	}
	p.pending = slices.Insert(p.pending, i, timedLine{at, write})
	p.armLocked()
}

// armLocked has the pending lines written in reorderWindow; p.logMu is held.
func (p *pair) armLocked() {
	if p.announced && p.flush == nil && len(p.pending) > 0 {
		p.flush = time.AfterFunc(reorderWindow, func() {
			p.logMu.Lock()
			defer p.logMu.Unlock()
			p.flush = nil
			p.flushLocked(time.Time{})
		})
	}
}

// flushLocked writes the pending lines of events up to until (every one if
// until is zero); p.logMu is held.
func (p *pair) flushLocked(until time.Time) {
	n := 0
	for n < len(p.pending) && (until.IsZero() || !p.pending[n].at.After(until)) {
		p.pending[n].write()
		n++
	}
	p.pending = slices.Delete(p.pending, 0, n)
	p.armLocked()
}

// announce writes the "pair requested" line, once the reply to from has
// been sent (or failed), then the lines that waited for it.
func (p *pair) announce(from string, received, replied time.Time) {
	p.mu.Lock()
	p.replied = replied
	p.mu.Unlock()
	p.logMu.Lock()
	defer p.logMu.Unlock()
	p.logRequested(from, received, replied)
	p.announced = true
	if len(p.queued) > 0 {
		p.flushLocked(time.Time{})
	}
	for _, f := range p.queued {
		f()
	}
	p.queued = nil
	p.armLocked()
}

// waitEvents waits until sd's release came and, if the listener
// captured the handshake of client, its SYN-ACK too, for at most limit. It
// returns the SYN-ACK's kernel time, if it was seen.
func (sd *side) waitEvents(client netip.AddrPort, captured bool, limit time.Duration) (time.Time, bool) {
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	for {
		sd.mu.Lock()
		released, faulted, changed := sd.released, sd.faulted, sd.changed
		synack, seen := sd.synacks[client]
		sd.mu.Unlock()
		if released && (seen || !captured || faulted) {
			return synack, seen
		}
		select {
		case <-changed:
		case <-timeout.C:
			return synack, seen
		}
	}
}

// broadcast wakes waitEvents; sd.mu is held.
func (sd *side) broadcast() {
	close(sd.changed)
	sd.changed = make(chan struct{})
}

// onEvent returns the listener callback of one side. Its line waits, with
// the pair's other event lines, to be written in time order; what the
// winner's line waits for is noted at once. It runs on the listener's
// goroutine, so it only logs and notes.
func (p *pair) onEvent(sd *side) func(listener.Event) {
	return func(e listener.Event) {
		p.inTime(e.Time, func() { p.logEvent(sd, e) })
		sd.note(e)
	}
}

// note records what waitEvents waits for: the release, the SYN-ACKs, a
// fault.
func (sd *side) note(e listener.Event) {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	sd.markLocked(e)
	switch e.Kind {
	case listener.Released:
		sd.released = true
	case listener.SYNACKSent:
		if _, dup := sd.synacks[e.Client]; dup {
			return
		}
		sd.synacks[e.Client] = e.Time
	case listener.Fault:
		sd.faulted = true
	default:
		return
	}
	sd.broadcast()
}

// logEvent writes the line of one event of side sd.
func (p *pair) logEvent(sd *side, e listener.Event) {
	switch e.Kind {
	case listener.SYNSeen:
		p.logSYN(sd, e)
	case listener.Released:
		p.logReleased(sd, e)
	case listener.SYNACKSent:
		p.log.Info("syn-ack sent", "family", familyName(sd.family), "client", e.Client.String(),
			"want", stamp(e.Want), "synack", stamp(e.Time), "synack_ms", p.sinceStart(e.Time), "late_us", e.Late().Microseconds())
	case listener.Fault:
		p.log.Error("listener fault", "family", familyName(sd.family), "at", stamp(e.Time), "err", e.Err)
	}
}

func (p *pair) logRequested(from string, received, replied time.Time) {
	fast, slow := p.sides[0], p.sides[1]
	if p.req.Slow == 4 {
		fast, slow = slow, fast
	}
	p.log.Info("pair requested",
		"request", hexByte(p.req.Byte), "from", from,
		"strategy", p.sides[0].ln.Strategy().String(),
		"ipv4_port", p.sides[0].port(), "ipv6_port", p.sides[1].port(),
		"slow", familyName(p.req.Slow), "start", stamp(p.started),
		"fast_want", stamp(fast.want), "slow_want", stamp(slow.want),
		"fast_ms", millis(p.s.cfg.FastDelay), "slow_ms", millis(p.s.cfg.SlowDelay),
		"received", stamp(received), "replied", stamp(replied), "reply_us", replied.Sub(received).Microseconds())
}

func (p *pair) logSYN(sd *side, e listener.Event) {
	p.log.Info("syn seen", "family", familyName(sd.family), "client", e.Client.String(),
		"syn", stamp(e.Time), "syn_ms", p.sinceStart(e.Time), "retransmit", e.Retransmit)
}

func (p *pair) logReleased(sd *side, e listener.Event) {
	attrs := []any{"family", familyName(sd.family)}
	if e.Client.IsValid() {
		attrs = append(attrs, "client", e.Client.String())
	}
	attrs = append(attrs, "want", stamp(e.Want), "released", stamp(e.Time), "released_ms", p.sinceStart(e.Time),
		"late_us", e.Late().Microseconds(), "replayed", e.Replayed)
	if e.Err != nil {
		p.log.Warn("released", append(attrs, "err", e.Err)...)
		return
	}
	p.log.Info("released", attrs...)
}

// logConnected logs the winning connection: when it was asked to
// complete, when its SYN-ACK left (if the listener saw it) and when it was
// accepted, each as an absolute time and in ms after the start, with how
// late the handshake was.
func (p *pair) logConnected(sd *side, c net.Conn, at time.Time, hs listener.Handshake, captured bool, synack time.Time, seen bool) {
	attrs := []any{
		"family", familyName(sd.family), "client", c.RemoteAddr().String(),
		"start", stamp(p.started), "want", stamp(sd.want), "want_ms", millis(p.delay(sd.family)),
		"synack_seen", seen,
	}
	if seen {
		attrs = append(attrs, "synack", stamp(synack), "synack_ms", p.sinceStart(synack), "late_us", synack.Sub(sd.want).Microseconds())
		if !hs.SYNACKSent.IsZero() && !hs.SYNACKSent.Equal(synack) {
			attrs = append(attrs, "synack_sent", stamp(hs.SYNACKSent))
		}
	}
	attrs = append(attrs, "accepted", stamp(at), "accepted_ms", p.sinceStart(at), "accept_late_us", at.Sub(sd.want).Microseconds())
	if captured {
		attrs = append(attrs, "syns", len(hs.SYNs))
	}
	p.log.Info("connected", attrs...)
}

// sinceStart is t as milliseconds after the pair's start; 0 for a spare.
func (p *pair) sinceStart(t time.Time) float64 {
	start := p.startedAt()
	if start.IsZero() {
		return 0
	}
	return millis(t.Sub(start))
}

// remoteAddrPort is c's peer address, zero if it is not TCP.
func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
