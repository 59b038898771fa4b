package main

// The proxy section: cmd/handshake-proxy against a direct connection and
// against toxiproxy-server itself, both built from this module into a
// temporary directory and run as separate processes, so that every figure is
// what a client in another process sees.
//
// run_linux.go calls runProxyBench; proxyReport(rows) is the section of
// report.md.

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/synhold/synhold/listener/capture"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/bench/internal/stats"
)

// ProxyRow is one figure of the proxy section.
type ProxyRow struct {
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

// proxySizes are the sample counts of the section.
type proxySizes struct {
	connects int   // handshakes per row
	pings    int   // round trips per row
	bytes    int64 // throughput transfer
	rate     int   // connections timed for connections/s
	idle     int   // idle connections held for RSS per connection
	rounds   int   // interleaved rounds the pings, bytes and rate are split into
}

func proxySizesOf(short bool) proxySizes {
	if short {
		return proxySizes{connects: 20, pings: 500, bytes: 32 << 20, rate: 200, idle: 200, rounds: 1}
	}
	return proxySizes{connects: 200, pings: 6000, bytes: 768 << 20, rate: 3000, idle: 1000, rounds: 3}
}

// toxiproxyVersions are the toxiproxy-server releases measured, oldest
// first; the newest also shows how toxiproxy's handshake ignores toxics.
var toxiproxyVersions = []string{"2.5.0", "2.12.0"}

// apiServer is one toxiproxy-API server process.
type apiServer struct {
	bin  string
	via  string // "handshake-proxy" or "toxiproxy X.Y.Z"
	api  *toxiclient.Client
	pid  int
	stop func()
}

// dataToxic is the toxic of the "with a data toxic" rows: it passes data
// unchanged but through toxiproxy's toxic links, in both directions.
var dataToxic = struct {
	typ   string
	attrs toxiclient.Attributes
}{"latency", toxiclient.Attributes{"latency": 0}}

// runProxyBench measures the proxy rows. progress gets one line per step.
func runProxyBench(short bool, progress func(string, ...any)) (rows []ProxyRow, err error) {
	sz := proxySizesOf(short)
	// toxiproxy's client keeps its API connections alive in the default
	// client; the servers are gone by then.
	defer http.DefaultClient.CloseIdleConnections()
	dir, err := os.MkdirTemp("", "proxy-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	progress("proxy: building handshake-proxy and toxiproxy-server %s", strings.Join(toxiproxyVersions, ", "))
	ours, err := goBuild(dir, "handshake-proxy", "github.com/synhold/synhold/cmd/handshake-proxy")
	if err != nil {
		return nil, err
	}
	bins := []struct{ via, bin string }{{"handshake-proxy", ours}}
	for _, v := range toxiproxyVersions {
		bin, err := goInstall(filepath.Join(dir, "toxiproxy-"+v), "github.com/Shopify/toxiproxy/v2/cmd/server", "v"+v)
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

// goBuild builds pkg into dir/name, with flags (such as -overlay FILE)
// before the package.
func goBuild(dir, name, pkg string, flags ...string) (string, error) {
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build", "-o", bin}, flags...), pkg)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", strings.Join(args[3:], " "), err, out)
	}
	return bin, nil
}

// goInstall builds pkg at a module version into dir (go install
// pkg@version: independent of this module's go.mod) and returns the binary.
func goInstall(dir, pkg, version string) (string, error) {
	cmd := exec.Command("go", "install", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", pkg, version, err, out)
	}
	return filepath.Join(dir, filepath.Base(pkg)), nil
}

// startAPI runs a toxiproxy-API server binary on a free loopback port and
// waits until it answers.
func startAPI(bin string) (*apiServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	url := "http://127.0.0.1:" + port
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url + "/version")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not answer on %s: %v", filepath.Base(bin), url, err)
		}
	}
	return &apiServer{bin: bin, api: toxiclient.NewClient(url), pid: cmd.Process.Pid, stop: stop}, nil
}

// forwardCase is one forwarding row being measured: directly (srv nil) or
// through srv's proxies, with dataToxic on both streams if toxic.
type forwardCase struct {
	srv   *apiServer
	ref   *refProxy // the reference proxy instead of a server's
	toxic bool

	row             ProxyRow
	echoAddr, sink  string
	proxies         []*toxiclient.Proxy
	rtts            []time.Duration
	mbps, connsPerS []float64
}

// setup names the row and creates its proxies and toxics.
func (c *forwardCase) setup(echoAddr, sinkAddr string) error {
	via := "direct"
	switch {
	case c.srv != nil:
		via = c.srv.via
	case c.ref != nil:
		via = refVia
	}
	c.row = ProxyRow{Name: "forward_" + rowName(via), Label: "forwarding, " + via, Via: via}
	if c.toxic {
		c.row.Toxic = toxicString(dataToxic.typ, dataToxic.attrs) + " (both streams)"
		c.row.Name += "_" + dataToxic.typ
		c.row.Label += ", " + c.row.Toxic
	}
	c.echoAddr, c.sink = echoAddr, sinkAddr
	if c.ref != nil {
		c.echoAddr, c.sink = c.ref.echo, c.ref.sink
	}
	if c.srv == nil {
		return nil
	}
	for _, up := range []*string{&c.echoAddr, &c.sink} {
		p, err := newProxy(c.srv.api, "fwd", *up)
		if err != nil {
			return err
		}
		c.proxies = append(c.proxies, p)
		if c.toxic {
			for _, stream := range []string{"upstream", "downstream"} {
				if _, err := p.AddToxic("", dataToxic.typ, stream, 1, dataToxic.attrs); err != nil {
					return err
				}
			}
		}
		*up = p.Listen
	}
	return nil
}

// measureForwarding measures every case: round trips, throughput and
// connections/s in interleaved rounds (the round trips of all rounds
// together, the median round's throughput and connections/s), then each
// case's connects, and the server's RSS and what each idle connection adds
// to it.
func measureForwarding(cases []*forwardCase, echoAddr, sinkAddr string, sz proxySizes, progress func(string, ...any)) (rows []ProxyRow, err error) {
	defer func() {
		for _, c := range cases {
			for _, p := range c.proxies {
				p.Delete()
			}
		}
	}()
	for _, c := range cases {
		if err := c.setup(echoAddr, sinkAddr); err != nil {
			return nil, fmt.Errorf("%s: %w", c.row.Label, err)
		}
	}
	for round := range sz.rounds {
		progress("proxy: forwarding, round %d of %d: %d rows", round+1, sz.rounds, len(cases))
		for _, c := range cases {
			ds, err := pingPong(c.echoAddr, sz.pings/sz.rounds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.row.Label, err)
			}
			c.rtts = append(c.rtts, ds...)
			m, err := throughput(c.sink, sz.bytes/int64(sz.rounds))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.row.Label, err)
			}
			c.mbps = append(c.mbps, m)
			r, err := connRate(c.echoAddr, sz.rate/sz.rounds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.row.Label, err)
			}
			c.connsPerS = append(c.connsPerS, r)
		}
	}
	for _, c := range cases {
		progress("proxy: %s: connects, RSS", c.row.Label)
		row := c.row
		row.RTT, row.MBps, row.ConnsPerS = stats.Summarize(c.rtts), stats.Median(c.mbps), stats.Median(c.connsPerS)
		if row.Connect, _, err = connects(c.echoAddr, sz.connects, 0); err != nil {
			return rows, fmt.Errorf("%s: %w", row.Label, err)
		}
		if c.srv != nil || c.ref != nil {
			if err := c.idleRSS(&row, echoAddr, sinkAddr, sz.idle); err != nil {
				return rows, fmt.Errorf("%s: %w", row.Label, err)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// idleRSS sets the row's RSS (the measured process's, after the rounds)
// and what each of n idle connections, held open, adds to the RSS of a
// fresh process of the same kind (with the case's toxics): a process that
// has just moved gigabytes holds freed memory that new connections would
// reuse, more or less of it from one program to the next.
func (c *forwardCase) idleRSS(row *ProxyRow, echoAddr, sinkAddr string, n int) error {
	measured := c.ref.pid()
	if c.srv != nil {
		measured = c.srv.pid
	}
	rss, err := procRSS(measured)
	if err != nil {
		return err
	}
	row.RSSMB = stats.Round3(float64(rss) / 1e6)
	var pid int
	var addr string
	var stop func()
	if c.ref != nil {
		fresh, err := runRefProxy(c.ref.bin, echoAddr, sinkAddr)
		if err != nil {
			return err
		}
		pid, addr, stop = fresh.pid(), fresh.echo, fresh.stop
	} else {
		fresh, err := startAPI(c.srv.bin)
		if err != nil {
			return err
		}
		f := &forwardCase{srv: fresh, toxic: c.toxic}
		if err := f.setup(echoAddr, sinkAddr); err != nil {
			fresh.stop()
			return err
		}
		pid, addr, stop = fresh.pid, f.echoAddr, fresh.stop
	}
	defer stop()
	before, err := procRSS(pid)
	if err != nil {
		return err
	}
	idle, err := holdIdle(addr, n)
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	if err != nil {
		return fmt.Errorf("idle connection %d: %w", len(idle), err)
	}
	after, err := procRSS(pid)
	if err != nil {
		return err
	}
	row.IdleConns = len(idle)
	row.RSSPerIdleKB = stats.Round3((float64(after) - float64(before)) / 1e3 / float64(len(idle)))
	return nil
}

// refVia names the reference proxy's row.
const refVia = "reference: minimal Go splice proxy"

// refProxySource is the reference proxy: the least a Go proxy can do per
// connection (accept, dial, one goroutine per direction, (*net.TCPConn).ReadFrom,
// which splices), with no API and no toxic: the floor handshake-proxy's
// fast path is measured against. It listens on 127.0.0.1 for each upstream
// given and prints the listen addresses, one a line.
const refProxySource = `package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	for _, up := range os.Args[1:] {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr())
		go serve(ln, up)
	}
	select {}
}

func serve(ln net.Listener, up string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			u, err := net.Dial("tcp", up)
			if err != nil {
				c.Close()
				return
			}
			go func() { u.(*net.TCPConn).ReadFrom(c); u.Close() }()
			c.(*net.TCPConn).ReadFrom(u)
			c.Close()
		}()
	}
}
`

// refProxy is the reference proxy's process and its two listen addresses.
type refProxy struct {
	cmd        *exec.Cmd
	bin        string
	echo, sink string
}

// startRefProxy builds and starts the reference proxy in front of the echo
// and sink upstreams.
func startRefProxy(dir, echo, sink string) (*refProxy, error) {
	src := filepath.Join(dir, "refproxy")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	if err := errors.Join(
		os.WriteFile(filepath.Join(src, "main.go"), []byte(refProxySource), 0o644),
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module refproxy\n\ngo 1.22\n"), 0o644)); err != nil {
		return nil, err
	}
	build := exec.Command("go", "build", "-o", "refproxy", ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the reference proxy: %w\n%s", err, out)
	}
	return runRefProxy(filepath.Join(src, "refproxy"), echo, sink)
}

// runRefProxy starts the reference proxy binary bin.
func runRefProxy(bin, echo, sink string) (*refProxy, error) {
	cmd := exec.Command(bin, echo, sink)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &refProxy{cmd: cmd, bin: bin}
	sc := bufio.NewScanner(out)
	for _, addr := range []*string{&r.echo, &r.sink} {
		if !sc.Scan() {
			r.stop()
			return nil, fmt.Errorf("the reference proxy printed no listen address: %v", sc.Err())
		}
		*addr = sc.Text()
	}
	return r, nil
}

func (r *refProxy) pid() int {
	if r == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *refProxy) stop() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// rowName is via as part of a row's name: "toxiproxy 2.5.0" is
// toxiproxy_2_5_0.
func rowName(via string) string {
	return strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(via)
}

// connRate makes n connections one after another, each a connect, a 1-byte
// round trip through the echo upstream and a close, and returns how many
// it made per second.
func connRate(addr string, n int) (float64, error) {
	b := []byte{1}
	start := time.Now()
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write(b)
		if err == nil {
			_, err = io.ReadFull(c, b)
		}
		c.Close()
		if err != nil {
			return 0, err
		}
	}
	return stats.Round3(float64(n) / time.Since(start).Seconds()), nil
}

// holdIdle opens n connections to the echo upstream addr, each echoing one
// byte (so that the proxy has set it up whole), and returns them open.
func holdIdle(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	b := []byte{1}
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(b); err != nil {
			return conns, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return conns, err
		}
	}
	// Let the proxy's per-connection setup settle before reading its RSS.
	time.Sleep(200 * time.Millisecond)
	return conns, nil
}

// procRSS is VmRSS of process pid, in bytes.
func procRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

var proxySeq atomic.Int64

// newProxy creates a proxy to upstream on a picked port.
func newProxy(api *toxiclient.Client, name, upstream string) (*toxiclient.Proxy, error) {
	return api.CreateProxy(fmt.Sprintf("%s%d", name, proxySeq.Add(1)), "127.0.0.1:0", upstream)
}

// toxicConnects times connects through a proxy with one toxic set.
func toxicConnects(dir string, api *toxiclient.Client, via, upstream, typ string, attrs toxiclient.Attributes, want time.Duration, n int) (ProxyRow, error) {
	row := ProxyRow{Name: typ + "_" + rowName(via), Via: via, Toxic: toxicString(typ, attrs), WantUS: stats.US(want)}
	row.Label = fmt.Sprintf("%s through %s", row.Toxic, via)
	if want > 0 {
		row.Name += fmt.Sprintf("_%dms", want.Milliseconds())
	}
	p, err := newProxy(api, typ, upstream)
	if err != nil {
		return row, err
	}
	defer p.Delete()
	if _, err := p.AddToxic("", typ, "downstream", 1, attrs); err != nil {
		row.Note = "toxic refused: " + err.Error()
		return row, nil
	}
	_, port, _ := net.SplitHostPort(p.Listen)
	dump, err := startProxyDump(filepath.Join(dir, row.Name+".pcap"), port)
	if err != nil {
		row.Note = "no tcpdump figures: " + err.Error()
	}
	row.Connect, row.Refused, err = connects(p.Listen, n, want)
	if dump != nil {
		if derr := dump.stop(); derr != nil {
			row.Note = "no tcpdump figures: " + derr.Error()
		} else if ds, derr := dump.handshakes(want); derr != nil {
			row.Note = "no tcpdump figures: " + derr.Error()
		} else {
			row.Wire = stats.Summarize(ds)
		}
	}
	return row, err
}

// proxyDump is tcpdump on lo recording the SYNs, SYN-ACKs and RSTs of one
// port to a pcap file with nanosecond times. On lo it records each packet
// once, as it arrives.
type proxyDump struct {
	cmd  *exec.Cmd
	file string
	port uint16
	out  chan string // stderr lines
}

// startProxyDump starts tcpdump and returns once it listens.
func startProxyDump(file, port string) (*proxyDump, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("tcpdump (apt-get install tcpdump): %w", err)
	}
	p, _ := strconv.Atoi(port)
	cmd := exec.Command(path, "-i", "lo", "-w", file, "--time-stamp-precision=nano", "--immediate-mode", "-U", "-Z", "root",
		fmt.Sprintf("tcp port %d and tcp[13] & 6 != 0", p))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &proxyDump{cmd: cmd, file: file, port: uint16(p), out: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case d.out <- sc.Text():
			default:
			}
		}
		close(d.out)
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-d.out:
			if !ok {
				cmd.Wait()
				return nil, errors.New("tcpdump exited before listening")
			}
			if strings.Contains(l, "listening on") {
				return d, nil
			}
		case <-timeout:
			d.stop()
			return nil, errors.New("tcpdump did not start listening in 10 s")
		}
	}
}

// stop stops tcpdump; it writes what it holds on SIGINT.
func (d *proxyDump) stop() error {
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		return errors.Join(<-done, errors.New("tcpdump did not stop on SIGINT"))
	}
}

// handshakes returns, per connection to the port, the time from its first
// SYN to the SYN-ACK or RST answering it, minus want.
func (d *proxyDump) handshakes(want time.Duration) ([]time.Duration, error) {
	f, err := os.Open(d.file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type conn struct {
		isn uint32
		syn time.Time
	}
	open := map[netip.AddrPort]conn{}
	var out []time.Duration
	err = capture.ReadAll(f, func(p capture.Packet) error {
		switch {
		case p.IsSYN() && p.Dst.Port() == d.port:
			if c, ok := open[p.Src]; !ok || c.isn != p.Seq {
				open[p.Src] = conn{isn: p.Seq, syn: p.Time}
			}
		case p.Src.Port() == d.port && (p.IsSYNACK() || p.Flags.Has(capture.RST)):
			if c, ok := open[p.Dst]; ok && p.Ack == c.isn+1 {
				out = append(out, p.Time.Sub(c.syn)-want)
				delete(open, p.Dst)
			}
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = errors.New("tcpdump saw no handshake")
	}
	return out, err
}

// toxicString is a toxic as one would type it: type k=v ...
func toxicString(typ string, attrs toxiclient.Attributes) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		typ += fmt.Sprintf(" %s=%v", k, attrs[k])
	}
	return typ
}

// connects times n sequential connects to addr by the client's own clock,
// minus want; it counts refusals apart (timed to the refusal).
func connects(addr string, n int, want time.Duration) (stats.Summary, int, error) {
	var ds []time.Duration
	refused := 0
	d := net.Dialer{Timeout: want + 5*time.Second}
	for range n {
		start := time.Now()
		c, err := d.Dial("tcp", addr)
		took := time.Since(start)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			refused++
		case err != nil:
			return stats.Summary{}, refused, err
		default:
			c.Close()
		}
		ds = append(ds, took-want)
	}
	return stats.Summarize(ds), refused, nil
}

// pingPong times n 1-byte round trips on one connection to an echo server.
func pingPong(addr string, n int) ([]time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	b := []byte{1}
	ds := make([]time.Duration, 0, n)
	c.SetDeadline(time.Now().Add(time.Minute))
	for range n {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(start))
	}
	return ds, nil
}

// throughput writes size bytes to a discarding upstream and times it until
// the upstream has read them all (it answers one byte then).
func throughput(addr string, size int64) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, 64<<10)
	start := time.Now()
	if _, err := fmt.Fprintf(c, "%016d", size); err != nil {
		return 0, err
	}
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return 0, err
		}
		left -= n
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return 0, fmt.Errorf("waiting for the upstream's count: %w", err)
	}
	return stats.Round3(float64(size) / (1 << 20) / time.Since(start).Seconds()), nil
}

// startUpstream serves each connection with handle on loopback.
func startUpstream(handle func(net.Conn)) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln, nil
}

func echoConn(c net.Conn) {
	c.(*net.TCPConn).SetNoDelay(true)
	io.Copy(c, c)
}

// discardConn reads a 16-digit length, that many bytes, and answers one
// byte.
func discardConn(c net.Conn) {
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	var size int64
	fmt.Sscanf(string(hdr[:]), "%d", &size)
	if _, err := io.CopyN(io.Discard, c, size); err == nil {
		c.Write([]byte{1})
	}
}

// proxyReport is the proxy section of report.md.
func proxyReport(rows []ProxyRow) string {
	var b strings.Builder
	b.WriteString("## Proxy: handshake-proxy against a direct connection and toxiproxy-server\n\n")
	b.WriteString("Separate processes on loopback, one run; an echo upstream (1-byte round trips), a discarding one (one connection's throughput).\n")
	b.WriteString("Round trips, throughput and connections/s in interleaved rounds (round trips pooled, the median round's throughput and connections/s). ")
	b.WriteString("connections/s: sequential connect + 1-byte round trip + close. RSS: the proxy process after those; per idle connection: ")
	b.WriteString("what each of the idle connections (each echoed one byte) held open through a fresh process of the same kind, with the same toxics, added to its RSS.\n\n")
	b.WriteString("| via | toxic | RTT p50 µs | RTT p99 µs | MiB/s | connections/s | connect p50 µs | RSS MB | RSS per idle connection kB |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var fwd []ProxyRow
	for _, r := range rows {
		if !strings.HasPrefix(r.Name, "forward_") {
			continue
		}
		fwd = append(fwd, r)
		rss, per := "–", "–"
		if r.RSSMB > 0 {
			rss, per = fmt.Sprintf("%.1f", r.RSSMB), fmt.Sprintf("%.1f (%d)", r.RSSPerIdleKB, r.IdleConns)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.0f | %.1f | %s | %s |\n", r.Via, orDash(r.Toxic),
			r.RTT.P50US, r.RTT.P99US, r.MBps, r.ConnsPerS, r.Connect.P50US, rss, per)
	}
	if t := forwardTargets(fwd); t != "" {
		b.WriteString("\n" + t)
	}
	b.WriteString("\nHandshakes: for a handshake toxic, connect is the time to connect minus the requested delay (its error).\n")
	b.WriteString("\"wire\" is tcpdump's SYN to SYN-ACK (or RST) on lo, minus the requested delay.\n\n")
	b.WriteString("| row | via | toxic | connect p50 µs | connect p99 µs | wire p50 µs | wire p99 µs | wire min µs | refused | note |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		if strings.HasPrefix(r.Name, "forward_") {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %s |\n", r.Name, r.Via, r.Toxic,
			r.Connect.P50US, r.Connect.P99US, r.Wire.P50US, r.Wire.P99US, r.Wire.MinUS, r.Refused, r.Note)
	}
	return b.String()
}

// forwardTargets compares handshake-proxy's forwarding rows with direct and
// toxiproxy's (its best release on each figure): the targets of issue 13.
func forwardTargets(rows []ProxyRow) string {
	var direct, reference, ours, oursToxic *ProxyRow
	var theirs, theirsToxic []*ProxyRow
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Via == "direct":
			direct = r
		case r.Via == refVia:
			reference = r
		case r.Via == "handshake-proxy" && r.Toxic == "":
			ours = r
		case r.Via == "handshake-proxy":
			oursToxic = r
		case r.Toxic == "":
			theirs = append(theirs, r)
		default:
			theirsToxic = append(theirsToxic, r)
		}
	}
	if direct == nil || ours == nil || len(theirs) == 0 {
		return ""
	}
	best := func(rs []*ProxyRow, f func(*ProxyRow) float64, low bool) float64 {
		v := f(rs[0])
		for _, r := range rs[1:] {
			if x := f(r); (low && x < v) || (!low && x > v) {
				v = x
			}
		}
		return v
	}
	rtt := func(r *ProxyRow) float64 { return r.RTT.P50US }
	mbps := func(r *ProxyRow) float64 { return r.MBps }
	rate := func(r *ProxyRow) float64 { return r.ConnsPerS }
	idle := func(r *ProxyRow) float64 { return r.RSSPerIdleKB }
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	var b strings.Builder
	b.WriteString("Targets (handshake-proxy against direct, and against toxiproxy's best release on each figure):\n\n")
	x := rtt(ours) / rtt(direct)
	fmt.Fprintf(&b, "- RTT p50 %.2f× direct (≤ 2×): %s", x, mark(x <= 2))
	if reference != nil {
		fmt.Fprintf(&b, "; the reference Go splice proxy's: %.2f×", rtt(reference)/rtt(direct))
	}
	b.WriteString("\n")
	x = mbps(ours) / mbps(direct)
	fmt.Fprintf(&b, "- throughput %.0f%% of direct (≥ 80%%): %s\n", 100*x, mark(x >= 0.8))
	x = rate(ours) / best(theirs, rate, false)
	fmt.Fprintf(&b, "- connections/s %.2f× toxiproxy's (≥ 2×): %s", x, mark(x >= 2))
	if reference != nil {
		fmt.Fprintf(&b, "; the reference Go splice proxy's: %.2f×", rate(reference)/best(theirs, rate, false))
	}
	b.WriteString("\n")
	y := best(theirs, idle, true)
	fmt.Fprintf(&b, "- RSS per idle connection %.1f kB, toxiproxy's %.1f kB (no more): %s\n", idle(ours), y, mark(idle(ours) <= y))
	if oursToxic != nil && len(theirsToxic) > 0 {
		r, m := best(theirsToxic, rtt, true), best(theirsToxic, mbps, false)
		fmt.Fprintf(&b, "- with %s: RTT p50 %.1f µs against %.1f µs, %.1f MiB/s against %.1f (no slower): %s\n",
			oursToxic.Toxic, rtt(oursToxic), r, mbps(oursToxic), m, mark(rtt(oursToxic) <= r && mbps(oursToxic) >= m))
	}
	return b.String()
}
