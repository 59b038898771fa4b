package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/dialrace"
)

// clientCommand is the first argument that makes the benchmark's binary
// the client process of the "as it is used" scenario (the benchmark starts
// itself again with it): see runClient.
const clientCommand = "heclient"

// Dial modes of the client process, as Happy Eyeballs drivers dial.
const (
	// modeBoth dials IPv4 and IPv6 at once.
	modeBoth = "both at once"
	// modeV6First dials IPv6, then IPv4 clientStagger later unless IPv6
	// connected or failed first (RFC 8305's connection attempt delay).
	modeV6First = "IPv6 first, IPv4 250 ms later"
)

// clientStagger is the delay before the second family in modeV6First.
const clientStagger = 250 * time.Millisecond

// The pair delays of the "as it is used" scenario: the fast family's
// handshakes complete 400 ms after the bind, so that a client dialling IPv6
// first has started IPv4 (250 ms later) well before the instant.
const (
	usedFast = 400 * time.Millisecond
	usedSlow = 800 * time.Millisecond
)

// clientPair is what the client process saw of one pair, by its own clock;
// it writes one per line, as JSON, on stdout.
type clientPair struct {
	Index int    `json:"i"`
	Mode  string `json:"mode"`
	Slow  int    `json:"slow"`
	// Request is just before the control connection was dialled, Replied
	// just after the reply's last byte was read.
	Request time.Time `json:"request"`
	Replied time.Time `json:"replied"`
	Port4   uint16    `json:"port4"`
	Port6   uint16    `json:"port6"`
	// Attempts are the connection attempts, in the order they started.
	Attempts []clientAttempt `json:"attempts"`
	// Winner is the family that connected first (0: none), Local its
	// local address, Connected when its dial returned, Byte what it read.
	Winner    int       `json:"winner"`
	Local     string    `json:"local,omitempty"`
	Connected time.Time `json:"connected"`
	Byte      int       `json:"byte"`
	Err       string    `json:"err,omitempty"`
	// FloorReply is how long a do-nothing server (-floor) took to reply
	// to the same request, asked after the same idle time before this
	// pair; 0 if none was asked.
	FloorReply time.Duration `json:"floor_reply_ns,omitempty"`
}

// clientAttempt is one family's connection attempt.
type clientAttempt struct {
	Family int       `json:"family"`
	Start  time.Time `json:"start"`
	Done   time.Time `json:"done"`
	Local  string    `json:"local,omitempty"`
	Err    string    `json:"err,omitempty"`
}

// clientOptions are the client process's command line.
type clientOptions struct {
	control        string
	pairs          int
	gapMin, gapMax time.Duration
	modes          []string
	timeout        time.Duration
	floor          string
}

// runClient is the client process: it asks the server at -control for
// -pairs pairs one after another, the slow family alternating, and dials
// each as a driver does (the modes alternate every two pairs), reads the
// winner's byte, closes, and stays idle for a random gap before the next.
// It writes a clientPair per line on stdout and returns the exit status.
func runClient(args []string, stdout, stderr io.Writer) int {
	o, err := parseClient(args)
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", clientCommand, err)
		return 2
	}
	enc := json.NewEncoder(stdout)
	idle := func() { time.Sleep(o.gapMin + rand.N(o.gapMax-o.gapMin+1)) }
	for i := range o.pairs {
		var floor time.Duration
		if o.floor != "" {
			t := time.Now()
			if _, _, err := request(o.floor, 4); err != nil {
				fmt.Fprintf(stderr, "bench %s: the do-nothing server: %v\n", clientCommand, err)
				return 1
			}
			floor = time.Since(t)
			idle()
		}
		p := clientRound(o, i)
		p.FloorReply = floor
		if err := enc.Encode(p); err != nil {
			fmt.Fprintf(stderr, "bench %s: %v\n", clientCommand, err)
			return 1
		}
		if i < o.pairs-1 {
			idle()
		}
	}
	return 0
}

func parseClient(args []string) (clientOptions, error) {
	var o clientOptions
	fs := flag.NewFlagSet(clientCommand, flag.ContinueOnError)
	fs.StringVar(&o.control, "control", "", "the server's control address, host:port")
	fs.IntVar(&o.pairs, "pairs", 10, "pairs to ask for, one after another")
	fs.DurationVar(&o.gapMin, "gap-min", 100*time.Millisecond, "shortest idle time between pairs")
	fs.DurationVar(&o.gapMax, "gap-max", 300*time.Millisecond, "longest idle time between pairs")
	modes := fs.String("modes", "both,v6first", "dial modes, alternating every two pairs: both, v6first")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on a pair after this")
	fs.StringVar(&o.floor, "floor", "", "a do-nothing server's address, host:port, also asked before each pair after the same idle time")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for m := range strings.SplitSeq(*modes, ",") {
		switch m {
		case "both":
			o.modes = append(o.modes, modeBoth)
		case "v6first":
			o.modes = append(o.modes, modeV6First)
		default:
			return o, fmt.Errorf("-modes: unknown mode %q (want both or v6first)", m)
		}
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.control == "":
		return o, errors.New("-control: the server's control address is needed")
	case o.pairs < 1:
		return o, fmt.Errorf("-pairs %d: want at least 1", o.pairs)
	case o.gapMin < 0 || o.gapMax < o.gapMin:
		return o, fmt.Errorf("-gap-min %v, -gap-max %v: want 0 ≤ min ≤ max", o.gapMin, o.gapMax)
	}
	return o, nil
}

// clientRound asks for pair i and races it.
func clientRound(o clientOptions, i int) clientPair {
	p := clientPair{Index: i, Slow: 4 + 2*(i%2), Mode: o.modes[(i/2)%len(o.modes)]}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	p.Request = time.Now()
	p4, p6, err := request(o.control, byte(p.Slow))
	p.Replied = time.Now()
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Port4, p.Port6 = p4, p6
	if err := race(ctx, &p); err != nil {
		p.Err = err.Error()
	}
	return p
}

// race dials the pair's two sides in p.Mode with dialrace (both at once,
// or IPv6 first and IPv4 clientStagger later), keeps the first to connect,
// and reads the winner's byte.
func race(ctx context.Context, p *clientPair) error {
	v4 := dialrace.Target{Network: "tcp4", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.Port4)))}
	v6 := dialrace.Target{Network: "tcp6", Addr: net.JoinHostPort("::1", strconv.Itoa(int(p.Port6)))}
	stagger, targets := clientStagger, []dialrace.Target{v6, v4}
	if p.Mode == modeBoth {
		stagger, targets = 0, []dialrace.Target{v4, v6}
	}
	win, w, attempts, err := dialrace.Race(ctx, stagger, targets...)
	for _, a := range attempts {
		ca := clientAttempt{Family: familyOfNetwork(a.Network), Start: a.Start, Done: a.Done, Local: a.Local}
		if a.Err != nil {
			ca.Err = a.Err.Error()
		}
		p.Attempts = append(p.Attempts, ca)
	}
	if err != nil {
		return fmt.Errorf("neither family connected: %w", err)
	}
	defer win.Close()
	a := attempts[w]
	p.Winner, p.Local, p.Connected = familyOfNetwork(a.Network), a.Local, a.Done
	if err := win.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(win, b[:]); err != nil {
		return fmt.Errorf("IPv%d connected but sent no byte: %w", p.Winner, err)
	}
	p.Byte = int(b[0])
	return nil
}

// familyOfNetwork is 6 for "tcp6", 4 otherwise.
func familyOfNetwork(network string) int {
	if network == "tcp6" {
		return 6
	}
	return 4
}

// request asks the control port for a pair whose family slow is slow, and
// returns its ports.
func request(ctrl string, slow byte) (port4, port6 uint16, err error) {
	c := happyeyeballs.Client{Addr: ctrl, Timeout: 10 * time.Second}
	p, err := c.Pair(context.Background(), int(slow))
	return p.IPv4.Port(), p.IPv6.Port(), err
}
