// Package proxybench measures handshake-proxy, the toxiproxy drop-in:
// its handshake toxics (handshake_delay, handshake_refuse) against the
// delay asked for, and its forwarding against a direct connection, a
// minimal Go splice proxy and toxiproxy-server itself. Every proxy is built
// into a temporary directory and run as a separate process, and tcpdump on
// lo times the handshakes from outside, so that every figure is what a
// client in another process sees. Run measures the rows and Report writes
// their part of a Markdown report.
package proxybench

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/synhold/synhold/bench/internal/proc"
	"github.com/synhold/synhold/bench/internal/stats"
)

// Row is one figure of the proxy section.
type Row struct {
	// Name identifies the row; Label names it for a person.
	Name  string `json:"name"`
	Label string `json:"label"`
	// Via is what the client connected through: "direct", "handshake-proxy"
	// or "toxiproxy".
	Via string `json:"via"`
	// Toxic is the toxic set on the proxy, with its attributes.
	Toxic string `json:"toxic,omitempty"`
	// WantUS is the handshake delay asked for, if any.
	WantUS float64 `json:"want_us,omitempty"`
	// Connect is how long the client's connect took (its own clock around
	// net.Dialer.Dial), minus WantUS when a delay was asked for.
	Connect stats.Summary `json:"connect"`
	// Wire is, from tcpdump on lo, each handshake's SYN to its SYN-ACK (or
	// RST), minus WantUS: what the proxy did, seen from outside it.
	Wire stats.Summary `json:"wire"`
	// Refused counts connects that ended in ECONNREFUSED.
	Refused int `json:"refused,omitempty"`
	// RTT is a 1-byte ping-pong's round trip through an echo upstream.
	RTT stats.Summary `json:"rtt"`
	// MBps is the throughput of one connection writing to an upstream that
	// discards, in MiB/s.
	MBps float64 `json:"mib_per_s,omitempty"`
	// ConnsPerS is sequential connections per second, each a connect, a
	// 1-byte round trip and a close.
	ConnsPerS float64 `json:"conns_per_s,omitempty"`
	// RSSMB is the proxy process's resident memory after the row's
	// round trips, throughput and connections, in MB.
	RSSMB float64 `json:"rss_mb,omitempty"`
	// IdleConns connections were then opened (each echoed one byte) and
	// held; RSSPerIdleKB is what each added to the proxy's RSS, in kB.
	IdleConns    int     `json:"idle_conns,omitempty"`
	RSSPerIdleKB float64 `json:"rss_per_idle_kb,omitempty"`
	Note         string  `json:"note,omitempty"`
}

// sizes are the sample counts of the section.
type sizes struct {
	connects int   // handshakes per row
	pings    int   // round trips per row
	bytes    int64 // throughput transfer
	rate     int   // connections timed for connections/s
	idle     int   // idle connections held for RSS per connection
	rounds   int   // interleaved rounds the pings, bytes and rate are split into
}

func sizesOf(short bool) sizes {
	if short {
		return sizes{connects: 20, pings: 500, bytes: 32 << 20, rate: 200, idle: 200, rounds: 1}
	}
	return sizes{connects: 200, pings: 6000, bytes: 768 << 20, rate: 3000, idle: 1000, rounds: 3}
}

// toxiproxyVersions are the toxiproxy-server releases measured, oldest
// first; the newest also shows how toxiproxy's handshake ignores toxics.
var toxiproxyVersions = []string{"2.5.0", "2.12.0"}

// dataToxic is the toxic of the "with a data toxic" rows: it passes data
// unchanged but through toxiproxy's toxic links, in both directions.
var dataToxic = struct {
	typ   string
	attrs toxiclient.Attributes
}{"latency", toxiclient.Attributes{"latency": 0}}

// Run measures the proxy rows. progress gets one line per step.
func Run(short bool, progress func(string, ...any)) (rows []Row, err error) {
	sz := sizesOf(short)
	// toxiproxy's client keeps its API connections alive in the default
	// client; the servers are gone by then.
	defer http.DefaultClient.CloseIdleConnections()
	dir, err := os.MkdirTemp("", "proxy-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	progress("proxy: building handshake-proxy and toxiproxy-server %s", strings.Join(toxiproxyVersions, ", "))
	ours, err := proc.GoBuild(dir, "handshake-proxy", "github.com/synhold/synhold/cmd/handshake-proxy")
	if err != nil {
		return nil, err
	}
	bins := []struct{ via, bin string }{{"handshake-proxy", ours}}
	for _, v := range toxiproxyVersions {
		bin, err := proc.GoInstall(filepath.Join(dir, "toxiproxy-"+v), "github.com/Shopify/toxiproxy/v2/cmd/server", "v"+v)
		if err != nil {
			return nil, err
		}
		bins = append(bins, struct{ via, bin string }{"toxiproxy " + v, bin})
	}
	echo, err := startUpstream(echoConn)
	if err != nil {
		return nil, err
	}
	defer echo.Close()
	sink, err := startUpstream(discardConn)
	if err != nil {
		return nil, err
	}
	defer sink.Close()

	var servers []*apiServer
	for _, b := range bins {
		srv, err := startAPI(b.bin)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		srv.via = b.via
		servers = append(servers, srv)
	}
	oursAPI, theirsAPI := servers[0].api, servers[len(servers)-1].api
	theirsVia := servers[len(servers)-1].via

	// Forwarding: direct, through each server with no toxic, then with a
	// data toxic, measured in interleaved rounds so that a change in the
	// machine's load falls on every row alike.
	ref, err := startRefProxy(dir, echo.Addr().String(), sink.Addr().String())
	if err != nil {
		return nil, err
	}
	defer ref.stop()
	cases := []*forwardCase{{}, {ref: ref}}
	for _, srv := range servers {
		cases = append(cases, &forwardCase{srv: srv})
	}
	for _, srv := range servers {
		cases = append(cases, &forwardCase{srv: srv, toxic: true})
	}
	fwd, err := measureForwarding(cases, echo.Addr().String(), sink.Addr().String(), sz, progress)
	rows = append(rows, fwd...)
	if err != nil {
		return rows, err
	}

	// Toxiproxy completes the handshake at once whatever toxic is set.
	for _, tx := range []struct {
		typ   string
		attrs toxiclient.Attributes
	}{
		{"latency", toxiclient.Attributes{"latency": 1000}},
		{"timeout", toxiclient.Attributes{"timeout": 0}},
		{"bandwidth", toxiclient.Attributes{"rate": 0}},
		{"reset_peer", toxiclient.Attributes{"timeout": 1000}},
	} {
		progress("proxy: toxiproxy's handshake with %s", tx.typ)
		row, err := toxicConnects(dir, theirsAPI, theirsVia, echo.Addr().String(), tx.typ, tx.attrs, 0, sz.connects)
		if err != nil {
			return rows, err
		}
		row.Note = strings.TrimPrefix(row.Note+"; the handshake completes at once: toxiproxy accepts in user space", "; ")
		rows = append(rows, row)
	}

	// Handshake toxics, from the client's clock.
	for _, d := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond} {
		progress("proxy: handshake_delay %v", d)
		row, err := toxicConnects(dir, oursAPI, "handshake-proxy", echo.Addr().String(), "handshake_delay",
			toxiclient.Attributes{"delay": d.Milliseconds()}, d, sz.connects)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	progress("proxy: handshake_refuse 100ms")
	row, err := toxicConnects(dir, oursAPI, "handshake-proxy", echo.Addr().String(), "handshake_refuse",
		toxiclient.Attributes{"delay": 100}, 100*time.Millisecond, sz.connects)
	if err != nil {
		return rows, err
	}
	return append(rows, row), nil
}

// rowName is via as part of a row's name: "toxiproxy 2.5.0" is
// toxiproxy_2_5_0.
func rowName(via string) string {
	return strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(via)
}
