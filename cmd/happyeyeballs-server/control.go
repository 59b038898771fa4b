package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/synhold/synhold/broker/happyeyeballs"
)

// pollEvery is how often --wait and --stop look again.
const pollEvery = 100 * time.Millisecond

// controlClient talks to the server on the control port of o.
func controlClient(o options) *happyeyeballs.Client {
	return &happyeyeballs.Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)), Timeout: 2 * time.Second}
}

// waitReady pings the control port until the server answers 0x01, or the
// timeout passes.
func waitReady(ctx context.Context, o options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c := controlClient(o)
	start := time.Now()
	if err := c.Wait(ctx, pollEvery); err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-server: --wait: no server answered on %s within %v (%v)\n", c.Addr, o.timeout, err)
		return 1
	}
	fmt.Fprintf(stdout, "happy eyeballs server on %s is ready (waited %v)\n", c.Addr, time.Since(start).Round(time.Millisecond))
	return 0
}

// stopServer sends 0xFF, then waits until the control port refuses
// connections. No server at all is not an error.
func stopServer(ctx context.Context, o options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c := controlClient(o)
	err := c.Stop(ctx, pollEvery)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		fmt.Fprintf(stdout, "no happy eyeballs server running on %s\n", c.Addr)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "happyeyeballs-server: --stop: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "happy eyeballs server on %s stopped\n", c.Addr)
	return 0
}
