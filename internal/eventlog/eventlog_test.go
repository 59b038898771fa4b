package eventlog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAt(t *testing.T) {
	when := time.Date(2026, 12, 1, 22, 30, 0, 123456789, time.UTC)
	tests := []struct {
		name     string
		level    slog.Level
		t        time.Time
		wantLine bool
		wantTime string // "" when any time is fine
	}{
		{"event time", slog.LevelInfo, when, true, "2026-12-01T22:30:00.123456789Z"},
		{"zero is now", slog.LevelInfo, time.Time{}, true, ""},
		{"below the level", slog.LevelDebug, when, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			before := time.Now()
			At(log, tt.level, tt.t, "syn", "client", "127.0.0.1:1")
			if !tt.wantLine {
				if buf.Len() != 0 {
					t.Fatalf("wrote %q below the logger's level", buf.String())
				}
				return
			}
			if n := strings.Count(buf.String(), `"time"`); n != 1 {
				t.Fatalf("line %q has %d time keys, want 1", buf.String(), n)
			}
			var line struct {
				Time   time.Time `json:"time"`
				Msg    string    `json:"msg"`
				Client string    `json:"client"`
			}
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			if line.Msg != "syn" || line.Client != "127.0.0.1:1" {
				t.Errorf("line %q: want msg syn and client 127.0.0.1:1", buf.String())
			}
			if tt.wantTime != "" {
				if got := line.Time.UTC().Format(time.RFC3339Nano); got != tt.wantTime {
					t.Errorf("time %s, want %s", got, tt.wantTime)
				}
			} else if line.Time.Before(before.Truncate(time.Microsecond)) || line.Time.After(time.Now()) {
				t.Errorf("time %v is not the time of the call", line.Time)
			}
		})
	}
}

// TestNew: text and JSON write the line from the level on; another format
// is an error naming the flag.
func TestNew(t *testing.T) {
	for _, tc := range []struct{ format, want string }{{"text", "msg=shown"}, {"json", `"msg":"shown"`}} {
		var b strings.Builder
		log, err := New(&b, tc.format, slog.LevelInfo)
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("hidden")
		log.Info("shown")
		if out := b.String(); !strings.Contains(out, tc.want) || strings.Contains(out, "hidden") {
			t.Errorf("%s: wrote %q, want the info line only", tc.format, out)
		}
	}
	if _, err := New(io.Discard, "xml", nil); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("New(xml) = %v, want an error naming --log-format", err)
	}
}
