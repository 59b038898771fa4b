package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/synhold/synhold/internal/netaddr"
)

// serverLine is one line of happyeyeballs-server's JSON log, with the fields
// the benchmark reads. Times are RFC 3339 with nanoseconds; a field the line
// lacks stays zero.
type serverLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Msg     string    `json:"msg"`
	Family  string    `json:"family"`
	Client  string    `json:"client"`
	Control []string  `json:"control"`
	// On "connected": the instant the handshake was asked to complete,
	// and the kernel time of its SYN-ACK as the server saw it.
	Want       stamp  `json:"want"`
	SYNACK     stamp  `json:"synack"`
	SYNACKSeen bool   `json:"synack_seen"`
	Err        string `json:"err"`
	// On "release clock" (at shutdown): the releases the clock fired and
	// its thread's own CPU time per release.
	Releases        int     `json:"releases"`
	CPUPerReleaseUS float64 `json:"cpu_per_release_us"`
}

// stamp is a time in a log line: RFC 3339, or empty.
type stamp struct{ time.Time }

func (s *stamp) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("time %s: %w", b, err)
	}
	if str == "" {
		s.Time = time.Time{}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	s.Time = t
	return err
}

// parseServerLog reads the server's JSON log; lines that are not JSON
// (a panic, say) are returned apart, as they are.
func parseServerLog(r io.Reader) (lines []serverLine, other []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var l serverLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				other = append(other, s)
			}
			continue
		}
		lines = append(lines, l)
	}
	return lines, other, sc.Err()
}

// clientKey is a log line's client address as the benchmark keys clients.
func (l serverLine) clientKey() (netip.AddrPort, bool) {
	a, err := netip.ParseAddrPort(l.Client)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netaddr.Canonical(a), true
}

// serverView is what the server logged of one winning connection.
type serverView struct {
	want       time.Time
	synack     time.Time
	synackSeen bool
	// releasedFirst: the side's "released" line came before "connected".
	releasedFirst bool
}

// serverViews reads the server's log into what it said of each winning
// connection, by client address (an address may win more than one pair over
// a run), and the lines at level WARN or above.
func serverViews(lines []serverLine) (map[netip.AddrPort][]*serverView, []string) {
	views := make(map[netip.AddrPort][]*serverView)
	var problems []string
	released := map[string]bool{} // families released in the current pair
	for _, l := range lines {
		if l.Level == "WARN" || l.Level == "ERROR" {
			problems = append(problems, l.Msg+errSuffix(l.Err))
		}
		c, hasClient := l.clientKey()
		switch l.Msg {
		case "pair requested":
			released = map[string]bool{}
		case "released":
			released[l.Family] = true
		case "connected":
			if !hasClient {
				continue
			}
			v := &serverView{want: l.Want.Time, synack: l.SYNACK.Time, synackSeen: l.SYNACKSeen, releasedFirst: released[l.Family]}
			views[c] = append(views[c], v)
		}
	}
	return views, problems
}

func errSuffix(err string) string {
	if err == "" {
		return ""
	}
	return ": " + err
}

// nearestView returns the view of views whose instant is closest to t.
func nearestView(views []*serverView, t time.Time) *serverView {
	return closest(views, t, func(v *serverView) time.Time { return v.want })
}

// closest returns the one of xs whose time (at) is closest to t, leaving
// out those with none (the zero time); nil if none has one.
func closest[T any](xs []*T, t time.Time, at func(*T) time.Time) *T {
	var best *T
	for _, x := range xs {
		if !at(x).IsZero() && (best == nil || at(x).Sub(t).Abs() < at(best).Sub(t).Abs()) {
			best = x
		}
	}
	return best
}
