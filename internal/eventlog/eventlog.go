// Package eventlog writes log lines whose time is when the thing they report
// happened (a SYN's kernel time, say), not when the line was written, so
// that they line up with a capture of the reader's own and carry no second
// time attribute beside the handler's.
package eventlog

import (
	"context"
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
