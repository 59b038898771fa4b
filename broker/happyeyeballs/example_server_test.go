package happyeyeballs_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
)

// A Server runs in the test's own process: here with short delays, asked
// for a pair by a Client, and dialled by a client under test that tries
// only IPv6 (the fast side here), which the server's judgement then names.
// The delays are kept to within ~0.1 ms with CAP_NET_RAW; without it the
// handshakes complete at the client's SYN retransmission (1 s) and the
// judgement is unknown.
func ExampleServer() {
	srv, err := happyeyeballs.NewServer(happyeyeballs.Config{
		FastDelay: 50 * time.Millisecond,
		SlowDelay: 300 * time.Millisecond,
		Spares:    1,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ctl) // returns once the server stops
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	he := &happyeyeballs.Client{Addr: ctl.Addr().String()}
	p, err := he.Pair(ctx, 4) // IPv4 slow
	if err != nil {
		log.Fatal(err)
	}
	var d net.Dialer // the client under test: IPv6 only
	c, err := d.DialContext(ctx, "tcp6", p.IPv6.String())
	if err != nil {
		log.Fatal(err)
	}
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	c.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fast family won:", b[0] == happyeyeballs.FamilyByte(p.Fast()))

	j, err := he.Judgement(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(j.Verdict, j.Deviations) // deviates [SingleFamily]
	fmt.Println(j.Why)
}
