// Package cli holds what synhold's commands share around their run
// function, which tests call in-process: the process's signals, arguments,
// streams and exit status in main, and what a command-line error means
// for the exit status.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run is a command's whole program: it returns the exit status.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Main calls run with a context that SIGINT and SIGTERM cancel (so that a
// server shuts down cleanly), the process's arguments and standard
// streams, and exits with the status run returns.
func Main(run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// UsageExit says whether a command must exit after parsing its command
// line with error err, and with what status: 0 after -h (the flag package
// printed the usage), 2 for a bad command line, whose error it writes to
// stderr after the command's name. With err nil the command goes on.
func UsageExit(name string, err error, stderr io.Writer) (code int, exit bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 2, true
}
