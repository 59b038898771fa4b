package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/synhold/synhold/bench/internal/proc"
	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/bench/internal/tcpdump"
)

// resendAfter is how long after its first SYN a SYN of the same
// connection is counted as late: the client's retransmission (its first
// timeout is 1 s), or a replay that late.
const resendAfter = 900 * time.Millisecond

// poolSize is one count of connections dialled at once, and how many
// rounds of it a run makes.
type poolSize struct{ n, rounds int }

// poolSizes are the pool rows' counts: 10, 100, 300 and 1000 at once
// (-short: 10 and 100, fewer rounds).
func poolSizes(short bool) []poolSize {
	if short {
		return []poolSize{{10, 2}, {100, 1}}
	}
	return []poolSize{{10, 20}, {100, 5}, {300, 3}, {1000, 2}}
}

// poolRows measures the floor for every pool size, then each pool row:
// cmd/handshake-proxy built and run in its own process, a proxy to a
// loopback upstream created and handshake_delay set through toxiproxy's
// own Go client, a client process dialling n connections at once per
// round, tcpdump on the proxy's port as the observer.
func poolRows(sn *sniffer, short bool) ([]PoolRow, []FloorRow, error) {
	sizes := poolSizes(short)
	var ns []int
	for _, s := range sizes {
		ns = append(ns, s.n)
	}
	floorRounds := 5
	if short {
		floorRounds = 2
	}
	floors, err := floorRows(sn, ns, floorRounds)
	if err != nil {
		return nil, floors, err
	}
	dir, err := os.MkdirTemp("", "synhold-pool-")
	if err != nil {
		return nil, floors, err
	}
	defer os.RemoveAll(dir)
	bin, err := proc.GoBuild(dir, "handshake-proxy", "github.com/synhold/synhold/cmd/handshake-proxy")
	if err != nil {
		return nil, floors, err
	}
	up, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, floors, err
	}
	defer up.Close()
	go drainUpstream(up)
	px, err := startHandshakeProxy(bin)
	if err != nil {
		return nil, floors, err
	}
	// toxiproxy's client keeps its API connections alive in the default
	// client; the server is gone by then.
	defer http.DefaultClient.CloseIdleConnections()
	rows, err := px.pools(dir, up.Addr().String(), sizes, floors)
	return rows, floors, errors.Join(err, px.stop())
}

// drainUpstream accepts every connection on ln and reads it until it
// closes, until ln closes.
func drainUpstream(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(io.Discard, c)
		}()
	}
}

// proxyProcess is a handshake-proxy process, its JSON log (stderr) kept.
type proxyProcess struct {
	*proc.Child
	api *toxiclient.Client
}

// startHandshakeProxy starts bin with its API on a free loopback port and
// returns once it logged where it listens.
func startHandshakeProxy(bin string) (*proxyProcess, error) {
	var addr string
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", "0", "--log-format", "json")
	ch, err := proc.Start(cmd, 15*time.Second, func(line []byte) bool {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(line, &l) != nil || l.Msg != "API listening" {
			return false
		}
		addr = l.Addr
		return true
	})
	if err != nil {
		return nil, err
	}
	return &proxyProcess{Child: ch, api: toxiclient.NewClient("http://" + addr)}, nil
}

func (p *proxyProcess) stop() error { return p.Child.Stop(syscall.SIGTERM, 10*time.Second) }

// pools creates the proxy with its toxic and runs each size's rounds.
func (p *proxyProcess) pools(dir, upstream string, sizes []poolSize, floors []FloorRow) ([]PoolRow, error) {
	proxy, err := p.api.CreateProxy("pool", "127.0.0.1:0", upstream)
	if err != nil {
		return nil, fmt.Errorf("create the proxy through toxiproxy's client: %w", err)
	}
	defer proxy.Delete()
	if _, err := proxy.AddToxic("", "handshake_delay", "downstream", 1,
		toxiclient.Attributes{"delay": poolDelay.Milliseconds()}); err != nil {
		return nil, fmt.Errorf("add handshake_delay through toxiproxy's client: %w", err)
	}
	var rows []PoolRow
	for _, s := range sizes {
		row, err := p.pool(dir, proxy.Listen, s)
		for _, f := range floors {
			if f.N == s.n && f.SpanUS > 0 {
				row.FloorUS, row.FloorRatio = f.SpanUS, stats.Round3(row.Error.P99US/f.SpanUS)
			}
		}
		rows = append(rows, row)
		if err != nil {
			return rows, fmt.Errorf("%d at once: %w\nproxy log (last lines): %s", s.n, err, p.Tail(8))
		}
		progress("  pool, %4d at once x %d: error p50 %s p99 %s max %s, %d early, %d SYNs resent, %d SYNs ≥ 0.9 s late; floor %s (p99/floor %.2f); "+
			"clock CPU %s per release (%s); load %s", s.n, s.rounds, stats.FmtUS(row.Error.P50US), stats.FmtUS(row.Error.P99US),
			stats.FmtUS(row.Error.MaxUS), row.Early, row.Resent, row.LateSYN, stats.FmtUS(row.FloorUS), row.FloorRatio, stats.FmtUS(row.CPU.PerReleaseUS),
			row.CPU.Thread, row.Load)
	}
	return rows, nil
}

// pool runs one size's rounds in one client process, tcpdump watching.
func (p *proxyProcess) pool(dir, addr string, s poolSize) (PoolRow, error) {
	row := PoolRow{Name: fmt.Sprintf("pool/%d", s.n), N: s.n, Rounds: s.rounds, DelayUS: stats.US(poolDelay), Load: loadAvg()}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return row, err
	}
	pcap := filepath.Join(dir, fmt.Sprintf("pool-%d.pcap", s.n))
	td, err := tcpdump.Start(pcap, fmt.Sprintf("tcp port %s and tcp[13] & 2 != 0", port))
	if err != nil {
		return row, err
	}
	pid := p.Pid()
	before, cerr := sampleClockCPU(pid)
	rounds, err := runPoolClientProcess(addr, s)
	after, aerr := sampleClockCPU(pid)
	dropped, terr := td.Stop()
	row.Dropped = dropped
	if err := errors.Join(err, cerr, aerr, terr); err != nil {
		return row, err
	}
	var sample []string
	for _, r := range rounds {
		row.Dialled += r.Dialled
		row.Connected += r.Connected
		sample = append(sample, r.Errors...)
	}
	if row.Connected < row.Dialled {
		return row, fmt.Errorf("%d of %d dials failed (%s)", row.Dialled-row.Connected, row.Dialled, strings.Join(sample, "; "))
	}
	obs, err := readObserved(pcap)
	if err != nil {
		return row, err
	}
	var errs []time.Duration
	for _, conns := range obs {
		for _, o := range conns {
			if o.synack.IsZero() {
				continue
			}
			// tcpdump sees the client's SYN and the proxy's replay of it;
			// a third is the client's retransmission.
			if o.syns >= 3 {
				row.Resent++
			}
			if o.last.Sub(o.syn) >= resendAfter {
				row.LateSYN++
			}
			e := o.synack.Sub(o.syn) - poolDelay
			if e < -earlyLimit {
				row.Early++
			}
			errs = append(errs, e)
		}
	}
	row.Seen = len(errs)
	row.Error, row.SamplesUS = stats.Summarize(errs), stats.SamplesUS(errs)
	row.CPU = cpuUse(before, after, row.Seen)
	if row.Seen < row.Connected {
		return row, fmt.Errorf("tcpdump saw %d handshakes of %d connected (%d dropped)", row.Seen, row.Connected, dropped)
	}
	return row, nil
}

// runPoolClientProcess runs the pool client process (this binary) and
// reads its rounds.
func runPoolClientProcess(addr string, s poolSize) ([]poolRound, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.rounds)*15*time.Second+30*time.Second)
	defer cancel()
	rounds, err := runLines[poolRound](ctx, "pool client process", self, poolCommand, "-addr", addr, "-n", strconv.Itoa(s.n), "-rounds", strconv.Itoa(s.rounds))
	if err != nil {
		return rounds, err
	}
	if len(rounds) != s.rounds {
		return rounds, fmt.Errorf("pool client process reported %d rounds, want %d", len(rounds), s.rounds)
	}
	return rounds, nil
}
