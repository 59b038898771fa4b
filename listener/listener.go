// Package listener provides TCP listeners whose handshakes complete at a
// chosen instant, or each a chosen time after its own SYN arrived: a client's
// connect(2) stays pending, with no SYN-ACK and no RST, until then. It is for
// testing what a client does while it connects (Happy Eyeballs races,
// connect timeouts, backoff) with no network in between to tune.
//
// Listen returns a Held, a net.Listener: Config.At or ReleaseAt says when
// its held handshakes complete, Config.After or Config.Decide decide each
// connection on its own first SYN (complete at an instant, or refuse with a
// RST). A listener reports what happened as Events (Config.OnEvent) and
// Handshakes: with strategy Replay, the kernel times of each connection's
// SYNs and SYN-ACK and how late its release was.
// The package's Example holds a handshake and releases it at an instant;
// docs/design.md says how a handshake is held and what each strategy
// guarantees.
//
// # Systems and privileges
//
// Holding SYNs is Linux's, and needs no privilege in itself. Listen with
// Strategy Auto (the zero Config) picks the best this process may do; the
// listener's Strategy and Mechanism say what it picked, and Probe says it
// before any listener opens:
//
//   - With CAP_NET_RAW (root, or setcap cap_net_raw+ep on the binary) a
//     listener also sees the SYNs on an AF_PACKET socket and replays each
//     one at its instant, so the kernel answers then: strategy Replay. Only
//     Replay reports SYN times and times single connections (Config.After,
//     Config.Decide, ReleaseHeld, refusals).
//   - Without CAP_NET_RAW, Auto falls back to strategy Retransmit: the
//     handshake completes at the client's first SYN retransmission after the
//     instant (Linux clients send one 1, 3, 7, 15 s... after the first SYN),
//     and the listener sees no SYNs. Strategy Replay asked for explicitly
//     fails with an error that satisfies errors.Is(err, os.ErrPermission)
//     and names CAP_NET_RAW; Config.After or Config.Decide fail with
//     ErrNeedsReplay.
//   - The hold itself is a BPF filter on the listening socket. Where the
//     kernel refuses the process that filter on a TCP socket (kernels with
//     kernel.unprivileged_bpf_disabled set ask for CAP_NET_ADMIN), the
//     listener holds SYNs with a full accept queue instead (Mechanism "full
//     accept queue"): releases and Hold work as with the filter, but
//     Config.After and Config.Decide fail with an error that satisfies
//     errors.Is(err, os.ErrPermission) and names CAP_NET_ADMIN.
//   - On other systems Auto is strategy DelayedListen: the listener binds at
//     once and calls listen(2) at the instant, which delays only clients
//     whose stack retries a refused SYN (Windows, macOS); a Linux client is
//     refused until then. Replay and Retransmit fail there with an error
//     wrapping errors.ErrUnsupported.
//
// # Precision
//
// Strategy Replay warms the kernel's path of a release shortly before it (a
// SYN of its own to a listener of its own, ~1.8 ms and again 100 µs before),
// since after an idle spell that path is several times slower than warm.
// Every listener of a process shares one release clock thread, named
// synhold-clock: releases due close together share its wake-up, its spin
// and their warm-up, and fire in the order of their instants.
//
// What strategy Replay guarantees about the instant: a refused connection's
// RST is never sent before its instant. A replayed SYN is sent early, by a
// lead learned per network namespace and address family from the
// listener's own releases (the smallest of the last 64 latencies from the
// start of a release to its SYN-ACK as the capture records it, less 15 µs,
// at most 150 µs, and none before 8 such releases), so that its SYN-ACK
// leaves at the instant rather than the kernel's path after it. A SYN-ACK
// therefore comes before its instant by at most 15 µs more than the
// kernel's path has been faster than the fastest of those 64 releases: no
// more than 20 µs early unless the path suddenly runs 5 µs faster than it
// ever did lately (checked over many releases on a loaded machine by this
// package's tests). The listening socket's filter goes with the release's
// start, so a new SYN that arrives within the lead is answered by the
// kernel as the replayed ones are, after the same path. How late a release
// is, as used, is measured by the benchmark (docs/bench.md). The
// happyeyeballs-server binary turns the lead off with SYNHOLD_EARLY=off and
// the warm-up with SYNHOLD_WARM=off (see docs/design.md).
package listener

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Strategy is how a listener delays handshakes.
type Strategy int

const (
	// Auto picks the best strategy the system and privileges allow.
	Auto Strategy = iota
	// Replay holds SYNs and replays each at its instant: the handshake
	// completes then, within the clock's precision. Linux, CAP_NET_RAW.
	Replay
	// Retransmit holds SYNs until the instant; the handshake completes at the
	// client's next SYN retransmission after it. Linux, no privilege.
	Retransmit
	// DelayedListen binds at once and calls listen(2) at the instant, the
	// way the original Python server does. On Linux a client is refused until
	// then; Windows and macOS clients retry.
	DelayedListen
)

var strategyNames = [...]string{"auto", "replay", "retransmit", "delayed-listen"}

// String returns the strategy's name: "auto", "replay", "retransmit" or
// "delayed-listen", as ParseStrategy takes it and the tools' --strategy flags.
func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return strategyNames[s]
}

// ParseStrategy parses the names String returns.
func ParseStrategy(name string) (Strategy, error) {
	for i, n := range strategyNames {
		if strings.EqualFold(name, n) {
			return Strategy(i), nil
		}
	}
	return Auto, fmt.Errorf("listener: unknown strategy %q (want one of %s)", name, strings.Join(strategyNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler, for JSON logs.
func (s Strategy) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config says when a listener's handshakes complete.
type Config struct {
	// Strategy is how handshakes are held; Auto by default.
	Strategy Strategy
	// At is the instant held handshakes complete. A SYN that arrives after
	// it is answered at once. Zero holds them until Release, ReleaseAt or
	// ReleaseHeld.
	At time.Time
	// After, if positive, completes each handshake After its own first SYN
	// arrived, instead of at one instant. It needs strategy Replay. It is
	// the Decide that returns Verdict{At: s.Time.Add(After)}.
	After time.Duration
	// Decide, if set, is called once per new connection, on its first SYN,
	// while the listener holds; its Verdict replaces the listener-wide
	// instant for that connection. It needs strategy Replay (Listen returns
	// ErrNeedsReplay otherwise). Decide runs on the capture's goroutine, without
	// the listener's lock: it must be quick (the capture waits for it), and
	// should not call the listener (Handshake and Handshakes wait for the
	// capture, and so for Decide, up to 50 ms).
	Decide func(SYN) Verdict
	// OnEvent, if set, is called for every event of the listener, in the
	// order they happened, from a goroutine of the listener's own. Events
	// are queued without bound and never dropped: a slow OnEvent delays
	// only this listener's later events, never a release or the capture.
	// Close delivers every event still queued before it returns, and
	// OnEvent is not called after that. OnEvent may call Close.
	OnEvent func(Event)
	// Quiet, with strategy Replay, makes a released listener cost its
	// process nothing: while released, the listener's port is left out of
	// the capture, so no SYN or SYN-ACK of its connections is observed,
	// and connections that arrive while it is released have no events and
	// no Handshake. It is left out only once the handshakes its release let
	// through have had their SYN-ACKs captured (or a second has passed).
	// Hold puts the port back in the capture, and returns only after the
	// kernel has the capture's new filter, before the hold itself is put
	// back: every SYN the hold drops is captured, and held as usual. By
	// default (false) a released listener keeps observing SYNs, as the
	// Happy Eyeballs server needs.
	Quiet bool
}

// EventKind says what an Event reports.
type EventKind int

const (
	// SYNSeen: a client's SYN arrived (Time is the kernel's receive time).
	SYNSeen EventKind = iota + 1
	// Released: the listener stopped holding, or replayed one held SYN.
	Released
	// SYNACKSent: the kernel answered a SYN. Time is when the SYN-ACK was
	// on the wire as an observer on the interface records it: on loopback
	// the copy received, which is what tcpdump records and the client gets
	// (the copy sent is stamped 5-20 µs earlier, hundreds under load);
	// elsewhere the copy sent.
	SYNACKSent
	// Refused: a held SYN was answered with a RST|ACK, as its Verdict
	// said (Time is when the RST was sent; Want is Verdict.At).
	Refused
	// Fault: the capture or the release clock failed (Err says how, and what
	// the listener does now: a failed capture leaves held SYNs to complete
	// at their client's retransmission after the release, as strategy
	// Retransmit does).
	Fault
)

var kindNames = [...]string{"", "syn", "released", "synack", "refused", "fault"}

// String returns the kind's short name, as JSON logs show it: "syn",
// "released", "synack", "refused" or "fault".
func (k EventKind) String() string {
	if k <= 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("EventKind(%d)", int(k))
	}
	return kindNames[k]
}

// MarshalText implements encoding.TextMarshaler, for JSON logs.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one thing that happened on a listener.
type Event struct {
	// Kind says what happened, and so which fields below are set.
	Kind EventKind
	// Local is the connection's local address for SYNSeen and SYNACKSent
	// (the SYN's destination, which tells a wildcard listener's addresses
	// apart), and the listener's address otherwise.
	Local netip.AddrPort
	// Client and ISN name the connection; zero for a listener-wide release.
	Client netip.AddrPort
	ISN    uint32
	// Time is when it happened: kernel time for SYNSeen and SYNACKSent.
	Time time.Time
	// Want is the instant the handshake was asked to complete (zero when the
	// listener was not holding).
	Want time.Time
	// Retransmit marks a SYN the client sent again for the same connection.
	Retransmit bool
	// Replayed counts the SYNs a Released event sent back into the stack.
	Replayed int
	// Err, on a Released event, is why the release did not go as planned;
	// on a Fault event, what failed.
	Err error
	// IP is the captured packet of a SYNSeen or SYNACKSent event, from its IP
	// header on (for a pcap file). The receiver may keep it.
	IP []byte
}

// Late is how long after the requested instant the event happened; negative
// if before. It is zero when nothing was requested.
func (e Event) Late() time.Duration {
	if e.Want.IsZero() {
		return 0
	}
	return e.Time.Sub(e.Want)
}

// SYN is the first SYN of a new connection, as the capture saw it.
type SYN struct {
	Client netip.AddrPort // the client's address (unmapped, no zone)
	Local  netip.AddrPort // the SYN's destination
	ISN    uint32
	Time   time.Time // kernel receive time
}

// Verdict says what becomes of one held connection: Config.Decide returns
// one for each new connection.
type Verdict struct {
	// At is when the handshake completes (or, with Refuse, is refused).
	// Zero holds it until Release, ReleaseAt or ReleaseHeld; an instant
	// already past settles it at once.
	At time.Time
	// Refuse answers the SYN at At with a RST|ACK (ack = ISN+1), so that
	// the client's connect(2) fails with ECONNREFUSED.
	Refuse bool
}

// Handshake is what a listener saw of one connection's handshake.
type Handshake struct {
	// Client is the client's address (unmapped, no zone), and ISN its
	// SYN's initial sequence number: together they name the connection.
	Client netip.AddrPort
	ISN    uint32
	// SYNs are the kernel times of the SYN and its retransmissions.
	SYNs []time.Time
	// Want is when the handshake was asked to complete.
	Want time.Time
	// Released is when the listener let it through: the replay, or the
	// release of the whole listener, or the SYN itself if nothing held it.
	Released time.Time
	// SYNACK is the kernel time of the first SYN-ACK, if it was seen, as an
	// observer on the interface records it (see SYNACKSent): on loopback
	// when it was received, the time tcpdump gives it.
	SYNACK time.Time
	// SYNACKSent is the kernel time the first SYN-ACK was sent; off
	// loopback the same as SYNACK.
	SYNACKSent time.Time
	// Refused is when the listener answered the SYN with a RST (its
	// Verdict said Refuse); zero otherwise.
	Refused time.Time
}

// Late is how long after Want the SYN-ACK went out (or, if it was not seen,
// the release happened).
func (h Handshake) Late() time.Duration {
	t := h.SYNACK
	if t.IsZero() {
		t = h.Released
	}
	if t.IsZero() || h.Want.IsZero() {
		return 0
	}
	return t.Sub(h.Want)
}

// ErrNeedsReplay is returned by Listen for a Config with After or Decide
// when the listener cannot replay single SYNs: strategy Retransmit or
// DelayedListen, asked for or picked by Auto (on Linux without CAP_NET_RAW,
// or on another system). Check it with errors.Is.
var ErrNeedsReplay = errors.New("listener: a per-connection verdict (After, Decide) needs strategy replay (Linux, CAP_NET_RAW)")

// splitNetwork resolves network and address to a TCP address and its family.
func splitNetwork(network, address string) (netip.AddrPort, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return netip.AddrPort{}, fmt.Errorf("listener: network %q: want tcp, tcp4 or tcp6", network)
	}
	ta, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listener: %w", err)
	}
	ap := ta.AddrPort()
	a := ap.Addr().Unmap()
	if !a.IsValid() {
		if network == "tcp6" {
			a = netip.IPv6Unspecified()
		} else {
			a = netip.IPv4Unspecified()
		}
	}
	if network == "tcp6" && a.Is4() || network == "tcp4" && a.Is6() {
		return netip.AddrPort{}, fmt.Errorf("listener: address %s is not %s", address, network)
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}
