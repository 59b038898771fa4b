package proxy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/listener"
)

// TestEventLog: each listener event is one line with its figures; a held
// handshake's lines are info lines up to its SYN-ACK or RST, those of
// handshakes no toxic touched debug lines.
func TestEventLog(t *testing.T) {
	e := newEnv(t, listener.Auto)
	f := e.srv.newForwarder("p", "127.0.0.1:0", "127.0.0.1:1")
	syn := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	want := syn.Add(200 * time.Millisecond)
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	other := netip.MustParseAddrPort("127.0.0.1:40001")
	tests := []struct {
		holding bool
		ev      listener.Event
		level   string
		msg     string
		fields  map[string]any
	}{
		{true, listener.Event{Kind: listener.SYNSeen, Client: client, Time: syn, Want: want}, "INFO", "syn held",
			map[string]any{"client": "127.0.0.1:40000", "time": "2026-12-01T12:00:00.123456789Z", "want": "2026-12-01T12:00:00.323456789Z", "hold_us": 200000.0}},
		{true, listener.Event{Kind: listener.Released, Client: client, Time: want.Add(90 * time.Microsecond), Want: want, Replayed: 1}, "INFO", "released",
			map[string]any{"late_us": 90.0, "replayed": 1.0}},
		{false, listener.Event{Kind: listener.SYNACKSent, Client: client, Time: want.Add(150 * time.Microsecond), Want: want}, "INFO", "syn-ack sent",
			map[string]any{"late_us": 150.0}},
		{true, listener.Event{Kind: listener.SYNSeen, Client: other, Time: syn}, "INFO", "syn held",
			map[string]any{"until": "the hold is removed"}},
		{false, listener.Event{Kind: listener.Released, Time: want, Replayed: 1}, "INFO", "released", map[string]any{"replayed": 1.0}},
		{false, listener.Event{Kind: listener.Refused, Client: other, Time: want.Add(40 * time.Microsecond), Want: want}, "INFO", "refused",
			map[string]any{"client": "127.0.0.1:40001", "late_us": 40.0}},
		{false, listener.Event{Kind: listener.Released, Time: syn}, "DEBUG", "released", map[string]any{"replayed": 0.0}},
		{false, listener.Event{Kind: listener.Released, Time: syn, Err: errors.New("replay: sendto: EPERM")}, "WARN", "released",
			map[string]any{"err": "replay: sendto: EPERM"}},
		{false, listener.Event{Kind: listener.Fault, Time: syn, Err: errors.New("capture: read: ENETDOWN; held SYNs complete at their retransmission")}, "ERROR", "listener fault",
			map[string]any{"err": "capture: read: ENETDOWN; held SYNs complete at their retransmission"}},
		{false, listener.Event{Kind: listener.SYNSeen, Client: client, Time: syn}, "DEBUG", "syn", nil},
		{false, listener.Event{Kind: listener.SYNACKSent, Client: client, Time: syn}, "DEBUG", "syn-ack sent", nil},
		{true, listener.Event{Kind: listener.SYNACKSent, Client: client, Time: syn}, "DEBUG", "syn-ack sent", nil},
	}
	for i, tt := range tests {
		f.holding.Store(tt.holding)
		before := len(e.log.lines(`"proxy":"p"`))
		f.onEvent(tt.ev)
		lines := e.log.lines(`"proxy":"p"`)
		if len(lines) != before+1 {
			t.Fatalf("event %d (%v): %d lines, want one", i, tt.ev.Kind, len(lines)-before)
		}
		if n := strings.Count(lines[len(lines)-1], `"time":`); n != 1 {
			t.Errorf("event %d (%v): %d \"time\" keys in %s, want one: the event's", i, tt.ev.Kind, n, lines[len(lines)-1])
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["level"] != tt.level || rec["msg"] != tt.msg {
			t.Errorf("event %d: %s %q, want %s %q", i, rec["level"], rec["msg"], tt.level, tt.msg)
		}
		for k, v := range tt.fields {
			if rec[k] != v {
				t.Errorf("event %d (%s): %s = %v, want %v (line %s)", i, tt.msg, k, rec[k], v, strings.TrimSpace(lines[len(lines)-1]))
			}
		}
	}
}
