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
)

// Control bytes this side sends, and the answer it expects.
const (
	reqPing     = 0xF0
	reqShutdown = 0xFF
	replyOK     = 0x01
)

// pollEvery is how often --wait and --stop look again.
const pollEvery = 100 * time.Millisecond

// controlAddr is where --wait and --stop find the server.
func controlAddr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// waitReady pings the control port until the server answers 0x01, or the
// timeout passes.
func waitReady(ctx context.Context, o options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	addr := controlAddr(o.port)
	start := time.Now()
	for {
		err := request(ctx, addr, reqPing)
		if err == nil {
			fmt.Fprintf(stdout, "happy eyeballs server on %s is ready (waited %v)\n", addr, time.Since(start).Round(time.Millisecond))
			return 0
		}
		if !sleepCtx(ctx, pollEvery) {
			fmt.Fprintf(stderr, "happyeyeballs-server: --wait: no server answered on %s within %v (last error: %v)\n", addr, o.timeout, err)
			return 1
		}
	}
}

// stopServer sends 0xFF, then waits until the control port refuses
// connections. No server at all is not an error.
func stopServer(ctx context.Context, o options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	addr := controlAddr(o.port)
	err := request(ctx, addr, reqShutdown)
	if errors.Is(err, syscall.ECONNREFUSED) {
		fmt.Fprintf(stdout, "no happy eyeballs server running on %s\n", addr)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-server: --stop: %v\n", err)
		return 1
	}
	if err := waitGone(ctx, addr); err != nil {
		fmt.Fprintf(stderr, "happyeyeballs-server: --stop: server on %s acknowledged but did not go within %v: %v\n", addr, o.timeout, err)
		return 1
	}
	fmt.Fprintf(stdout, "happy eyeballs server on %s stopped\n", addr)
	return 0
}

// waitGone polls addr until connecting is refused.
func waitGone(ctx context.Context, addr string) error {
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if err == nil {
			c.Close()
		}
		if !sleepCtx(ctx, pollEvery) {
			return fmt.Errorf("control port still open: %w", ctx.Err())
		}
	}
}

// request sends one control byte to addr and checks the 0x01 answer.
func request(ctx context.Context, addr string, b byte) error {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := dctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte{b}); err != nil {
		return fmt.Errorf("send 0x%02x: %w", b, err)
	}
	var reply [1]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return fmt.Errorf("read the answer to 0x%02x: %w", b, err)
	}
	if reply[0] != replyOK {
		return fmt.Errorf("0x%02x answered 0x%02x, want 0x%02x", b, reply[0], replyOK)
	}
	return nil
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
