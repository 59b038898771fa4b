package listener_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/synhold/synhold/listener"
)

// A listener holds every handshake until an instant: the client's connect
// returns then, not before. With CAP_NET_RAW (strategy replay) it returns
// within ~0.1 ms of the instant and the listener reports the kernel times of
// the SYN and SYN-ACK; without it (strategy retransmit) it returns at the
// client's first SYN retransmission after the instant, 1 s after its SYN.
func Example() {
	at := time.Now().Add(200 * time.Millisecond)
	ln, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{At: at})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println("strategy:", ln.Strategy(), "hold:", ln.Mechanism())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			c.Close()
		}
	}()

	c, err := net.Dial("tcp4", ln.Addr().String()) // pending until at
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Printf("connected %v after the instant\n", time.Since(at).Round(time.Microsecond))
	if hs, ok := ln.Handshake(c.LocalAddr().(*net.TCPAddr).AddrPort()); ok {
		fmt.Printf("SYN held %v; SYN-ACK %v after the instant\n",
			hs.SYNACK.Sub(hs.SYNs[0]).Round(time.Microsecond), hs.Late())
	}
}

// Each connection can be decided on its own first SYN (strategy replay
// only): here the first connection is refused and every later one completes
// 100 ms after its SYN. Without CAP_NET_RAW, Listen fails with
// ErrNeedsReplay.
func Example_decide() {
	var n int // Decide runs on one goroutine, the capture's
	ln, err := listener.Listen("tcp4", "127.0.0.1:0", listener.Config{
		Decide: func(s listener.SYN) listener.Verdict {
			n++
			return listener.Verdict{At: s.Time.Add(100 * time.Millisecond), Refuse: n == 1}
		},
	})
	if errors.Is(err, listener.ErrNeedsReplay) {
		fmt.Println("needs CAP_NET_RAW:", err)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for range 2 {
		start := time.Now()
		c, err := net.Dial("tcp4", ln.Addr().String())
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Printf("refused after %v\n", time.Since(start).Round(time.Millisecond))
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("connected after %v\n", time.Since(start).Round(time.Millisecond))
			c.Close()
		}
	}
}

// Probe tells, before any listener opens, whether handshakes will complete
// at their instant (strategy replay) or only at a retransmission.
func ExampleProbe() {
	s, err := listener.Probe()
	switch {
	case err == nil:
		fmt.Println("strategy", s)
	case errors.Is(err, os.ErrPermission):
		fmt.Println("strategy", s, "(run as root or setcap cap_net_raw+ep):", err)
	default:
		fmt.Println("strategy", s, "probably; the probe was inconclusive:", err)
	}
}
