package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// noopCommand is the first argument that makes the benchmark's binary a
// do-nothing control server (see runNoopServer): the floor of the control
// reply, asked the same way as the server under test, in a process of its
// own as that server is.
const noopCommand = "noopserver"

// noopReady is the line the do-nothing server writes on stderr once it
// listens, followed by its address.
const noopReady = "noop server listening on "

// runNoopServer serves control requests on 127.0.0.1:0 with serveFixed,
// opening no listener, until SIGTERM or SIGINT; it returns the exit status.
func runNoopServer(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "bench %s: unexpected arguments %q\n", noopCommand, args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", noopCommand, err)
		return 1
	}
	fmt.Fprintln(stderr, noopReady+ln.Addr().String())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	serveFixed(ln)
	return 0
}

// serveFixed answers every control connection on ln with 0x01 and two
// fixed ports, until ln closes.
func serveFixed(ln net.Listener) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Go(func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			c.Write([]byte{0x01, 0x27, 0x10, 0x27, 0x11})
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		})
	}
}
