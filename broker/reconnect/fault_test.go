package reconnect

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/synhold/synhold/listener"
)

// TestListenerFaultLogged: a Fault of a retry listener (its capture failed)
// is an error line with what failed, at the fault's time, not lost.
func TestListenerFaultLogged(t *testing.T) {
	var logs bytes.Buffer
	srv, err := NewServer(Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	at := time.Date(2026, 12, 1, 22, 40, 0, 123456789, time.UTC)
	logs.Reset()
	srv.onEvent(listener.Event{Kind: listener.Fault, Time: at, Err: errors.New("capture: read: ENETDOWN")})
	var line struct {
		Time  time.Time `json:"time"`
		Level string    `json:"level"`
		Msg   string    `json:"msg"`
		Err   string    `json:"err"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("no JSON line for the fault (%v): %q", err, logs.String())
	}
	if line.Level != "ERROR" || line.Err != "capture: read: ENETDOWN" || !line.Time.Equal(at) {
		t.Errorf("fault line %q: want level ERROR, err capture: read: ENETDOWN, time %v", logs.String(), at)
	}
}
