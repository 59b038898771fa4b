// Package eventlog writes log lines whose time is when the thing they report
// happened (a SYN's kernel time, say), not when the line was written, so
// that they line up with a capture of the reader's own and carry no second
// time attribute beside the handler's.
package eventlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// At writes a line at level whose time (the handler's "time" key, RFC 3339
// with nanoseconds in JSON) is t; a zero t is the time of the call. Nothing
// is built when log does not log at level.
func At(log *slog.Logger, level slog.Level, t time.Time, msg string, args ...any) {
	ctx := context.Background()
	if !log.Enabled(ctx, level) {
		return
	}
	if t.IsZero() {
		t = time.Now()
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.Add(args...)
	_ = log.Handler().Handle(ctx, r)
}

// New returns a logger writing format ("text" or "json", the servers'
// --log-format) to w, from level on; any other format is an error that
// names the flag.
func New(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
