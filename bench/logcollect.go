package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logRecord is one log record of the server under test, its attributes
// resolved.
type logRecord struct {
	Msg   string
	Level slog.Level
	Time  time.Time
	Attrs map[string]slog.Value
}

// logStore holds the records every handler derived from one collector
// writes.
type logStore struct {
	mu   sync.Mutex
	recs []logRecord
}

// logCollector is a slog.Handler that keeps records in memory, so that the
// benchmark can read the figures a server logs. Groups are flattened.
type logCollector struct {
	store *logStore
	attrs []slog.Attr
}

func newLogCollector() *logCollector { return &logCollector{store: &logStore{}} }

// Enabled keeps Info and above.
func (h *logCollector) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// Handle stores r with the handler's attributes.
func (h *logCollector) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Msg: r.Message, Level: r.Level, Time: r.Time, Attrs: make(map[string]slog.Value, len(h.attrs)+r.NumAttrs())}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.Resolve()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Resolve()
		return true
	})
	h.store.mu.Lock()
	h.store.recs = append(h.store.recs, rec)
	h.store.mu.Unlock()
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *logCollector) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logCollector{store: h.store, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup returns h: the collector flattens groups.
func (h *logCollector) WithGroup(string) slog.Handler { return h }

// take returns the records stored so far and forgets them.
func (h *logCollector) take() []logRecord {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	recs := h.store.recs
	h.store.recs = nil
	return recs
}

// count returns how many stored records have message msg.
func (h *logCollector) count(msg string) int {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	n := 0
	for _, r := range h.store.recs {
		if r.Msg == msg {
			n++
		}
	}
	return n
}
