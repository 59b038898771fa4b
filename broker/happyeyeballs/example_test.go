package happyeyeballs_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
)

// A driver's test asks a running happyeyeballs-server for a pair whose IPv4
// side is slow, dials both sides with its own Happy Eyeballs code (here a
// stand-in, net.Dialer with both addresses raced), and checks that IPv6 won.
func ExampleClient_Pair() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	he := &happyeyeballs.Client{Addr: "127.0.0.1:10036"}
	p, err := he.Pair(ctx, 4)
	if err != nil {
		fmt.Println(err) // no server, or it could not open a pair
		return
	}
	conn, err := raceDial(ctx, p.IPv6.String(), p.IPv4.String()) // the code under test
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fast family won:", b[0] == happyeyeballs.FamilyByte(p.Fast()))
}

// raceDial dials every address at once and keeps the first to connect.
func raceDial(ctx context.Context, addrs ...string) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, len(addrs))
	for _, a := range addrs {
		go func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", a)
			results <- result{c, err}
		}()
	}
	var err error
	for i := range addrs {
		r := <-results
		if r.err != nil {
			err = r.err
			continue
		}
		go func() { // close the losers that connected too
			for range len(addrs) - 1 - i {
				if r := <-results; r.c != nil {
					r.c.Close()
				}
			}
		}()
		return r.c, nil
	}
	return nil, err
}

// A driver's test asserts that its dialler conforms to RFC 8305: after
// connecting over a pair, it asks the server for its judgement of that
// pair, which comes once the pair has closed (at the first connection).
// Here the dialler under test is Go's own: a net.Dialer given "localhost"
// would race ::1 and 127.0.0.1 with its 300 ms FallbackDelay.
func ExampleClient_Judgement() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	he := &happyeyeballs.Client{Addr: "127.0.0.1:10036", SamePort: true}
	p, err := he.Pair(ctx, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	var d net.Dialer // the code under test
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("localhost", fmt.Sprint(p.IPv4.Port())))
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Close()
	j, err := he.Judgement(ctx, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	if j.Verdict != happyeyeballs.Conforms {
		fmt.Printf("deviates from RFC 8305: %v: %s\n", j.Deviations, j.Why)
	}
}
