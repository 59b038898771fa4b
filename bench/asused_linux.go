package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/synhold/synhold/bench/internal/proc"
	"github.com/synhold/synhold/bench/internal/stats"
)

// usedCase is one run of the scenario: a fresh server, its observer and
// one client process asking for pairs one after another.
type usedCase struct {
	name, label string
	// hogs is how many busy processes load the machine meanwhile.
	hogs int
	// serverArgs are added to the server's command line, env to its
	// environment: how a lever is turned.
	serverArgs, env []string
	// pairs is how many pairs each client process asks for.
	pairs int
	note  string
	// clients is how many client processes ask at once (0: one), with
	// clientArgs added to their command lines.
	clients    int
	clientArgs []string
	// floor: each client also asks a do-nothing server (noopCommand) for a
	// pair before each of its pairs, after the same idle time.
	floor bool
}

// usedCases are the runs of pairs pairs each: the machine as it is, then
// with 4 busy processes, as on a CI machine running the rest of a test
// suite.
func usedCases(pairs int) []usedCase {
	return []usedCase{
		{name: "used/idle", label: "machine as it is", pairs: pairs, floor: true},
		{name: "used/busy4", label: "4 busy processes", hogs: 4, pairs: pairs},
	}
}

// usedRun is what a case needs: the binaries and where to put the files.
type usedRun struct {
	server string // the server's binary, as shipped
	self   string // the client's (this one)
	dir    string
	sn     *sniffer
}

// buildServer builds cmd/happyeyeballs-server into dir, as a user installs
// it.
func buildServer(dir string) (string, error) {
	return proc.GoBuild(dir, "happyeyeballs-server", serverPkg)
}

// asUsed runs every case and returns its rows: all pairs, then one per dial
// mode (all pairs only for the levers).
func asUsed(sn *sniffer, cases []usedCase) ([]UsedRow, error) {
	dir, err := os.MkdirTemp("", "synhold-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	u := usedRun{self: self, dir: dir, sn: sn}
	var rows []UsedRow
	for _, c := range cases {
		if err := u.build(c); err != nil {
			return rows, err
		}
		t := time.Now()
		rs, err := u.run(c, c.pairs)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", c.label, err)
		}
		for _, r := range rs {
			progress("  %-44s release p50 %9s p99 %9s max %9s; reply p99 %s; server reported %d/%d, max gap %s (%.0f s)",
				r.Label, stats.FmtUS(r.Release.P50US), stats.FmtUS(r.Release.P99US), stats.FmtUS(r.Release.MaxUS), stats.FmtUS(r.Reply.P99US),
				r.ServerReported, r.Winners, stats.FmtUS(r.ServerGapMaxUS), time.Since(t).Seconds())
		}
		rows = append(rows, rs...)
	}
	return rows, nil
}

// build builds the binary case c needs, once.
func (u *usedRun) build(c usedCase) (err error) {
	switch {
	case u.server == "":
		u.server, err = buildServer(u.dir)
	}
	return err
}

// run runs one case: busy processes if any, then the observer, the server
// and the client; it returns the case's row for all pairs, then a row per
// dial mode.
func (u usedRun) run(c usedCase, pairs int) ([]UsedRow, error) {
	if c.hogs > 0 {
		h, err := startHogs(c.hogs)
		if err != nil {
			return nil, err
		}
		defer h.stop()
	}
	pcap := filepath.Join(u.dir, strings.ReplaceAll(c.name, "/", "-")+".pcap")
	td, err := startTCPDump(pcap)
	if err != nil {
		return nil, err
	}
	bin := u.server
	var floor *noopProcess
	if c.floor {
		if floor, err = startNoopServer(u.self); err != nil {
			td.Stop()
			return nil, err
		}
		defer floor.stop()
	}
	srv, err := startServer(bin, c)
	if err != nil {
		td.Stop()
		return nil, err
	}
	load := loadAvg()
	before, berr := sampleClockCPU(srv.Pid())
	got, cerr := u.client(srv.control, floor.address(), c)
	after, aerr := sampleClockCPU(srv.Pid())
	serr := srv.stop()
	dropped, terr := td.Stop()
	if err := errors.Join(cerr, berr, aerr, serr, terr); err != nil {
		return nil, fmt.Errorf("%w\nserver log (last lines): %s", err, srv.Tail(8))
	}
	obs, err := readObserved(pcap)
	if err != nil {
		return nil, err
	}
	lines, other, err := parseServerLog(bytes.NewReader(srv.Output()))
	if err != nil {
		return nil, err
	}
	in := usedInput{pairs: got, obs: obs, lines: lines, other: other, dropped: dropped, own: u.sn.snapshot()}
	rows := []UsedRow{usedRow(c, "", in)}
	rows[0].ServerStart = startFields(srv.ready)
	rows[0].Load, rows[0].Clients = load, max(1, c.clients)
	rows[0].ClockCPU = cpuUse(before, after, released(lines))
	serverClockCPU(&rows[0].ClockCPU, lines)
	rows[0].ControlFloor = floorReplies(got)
	if c.env != nil || c.serverArgs != nil || c.clients > 1 {
		return rows, nil
	}
	for _, m := range []string{modeBoth, modeV6First} {
		rows = append(rows, usedRow(c, m, in))
	}
	return rows, nil
}

// client runs case c's client processes at once (asking floor too, if
// not empty) and reads what each saw of each pair.
func (u usedRun) client(control, floor string, c usedCase) ([]clientPair, error) {
	n := max(1, c.clients)
	got := make([][]clientPair, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = u.clientProcess(control, floor, c) })
	}
	wg.Wait()
	return slices.Concat(got...), errors.Join(errs...)
}

// clientProcess runs one client process and reads what it saw of each
// pair.
func (u usedRun) clientProcess(control, floor string, c usedCase) ([]clientPair, error) {
	pairs := c.pairs
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(pairs)*3*time.Second+30*time.Second)
	defer cancel()
	args := append([]string{clientCommand, "-control", control, "-pairs", strconv.Itoa(pairs)}, c.clientArgs...)
	if floor != "" {
		args = append(args, "-floor", floor)
	}
	got, err := runLines[clientPair](ctx, "client process", u.self, args...)
	if err != nil {
		return got, err
	}
	if len(got) != pairs {
		return got, fmt.Errorf("client process reported %d pairs, want %d", len(got), pairs)
	}
	return got, nil
}

// runLines runs a process of the benchmark's own (self with args), lets it
// run until ctx is done, and decodes each JSON value it writes to stdout as
// a T. what names the process in errors, with its stderr.
func runLines[T any](ctx context.Context, what, self string, args ...string) ([]T, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", what, err, strings.TrimSpace(errb.String()))
	}
	var got []T
	dec := json.NewDecoder(&out)
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("%s output: %w", what, err)
		}
		got = append(got, v)
	}
}

// startFields are the start-up line's fields that say how the server holds
// handshakes and times them, as "key=value" pairs.
func startFields(ready map[string]any) []string {
	var out []string
	for k, v := range ready {
		switch k {
		case "time", "level", "msg", "control", "fast_delay", "slow_delay", "pair_timeout", "idle_timeout", "same_port":
			continue
		}
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(out)
	return out
}

// heProcess is a happyeyeballs-server process, its JSON log (stderr) kept.
type heProcess struct {
	*proc.Child
	control string // its control address on 127.0.0.1
	// ready is its start-up line's fields.
	ready map[string]any
}

// startServer starts the server on a free control port and returns once it
// logged that it is ready.
func startServer(bin string, c usedCase) (*heProcess, error) {
	args := append([]string{"-c", "0", "--log-format", "json", "--fast-delay", usedFast.String(),
		"--slow-delay", usedSlow.String()}, c.serverArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	p := &heProcess{}
	ch, err := proc.Start(cmd, 15*time.Second, func(line []byte) bool {
		var l serverLine
		if json.Unmarshal(line, &l) != nil || l.Msg != "happy eyeballs server ready" {
			return false
		}
		for _, a := range l.Control {
			if ap, err := netip.ParseAddrPort(a); err == nil && ap.Addr().Is4() {
				p.control = a
				_ = json.Unmarshal(line, &p.ready)
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	p.Child = ch
	return p, nil
}

// stop asks the server to stop (SIGTERM) and waits for it to exit.
func (p *heProcess) stop() error { return p.Child.Stop(syscall.SIGTERM, 10*time.Second) }
