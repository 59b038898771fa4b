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
	Connect Summary `json:"connect"`
	// Wire is, from tcpdump on lo, each handshake's SYN to its SYN-ACK (or
	// RST), minus WantUS: what the proxy did, seen from outside it.
	Wire Summary `json:"wire"`
	// Refused counts connects that ended in ECONNREFUSED.
	Refused int `json:"refused,omitempty"`
	// RTT is a 1-byte ping-pong's round trip through an echo upstream.
	RTT Summary `json:"rtt"`
	// MBps is the throughput of one connection writing to an upstream that
	// discards, in MiB/s.
	MBps float64 `json:"mib_per_s,omitempty"`
	Note string  `json:"note,omitempty"`
}

// proxySizes are the sample counts of the section.
type proxySizes struct {
	connects int   // handshakes per row
	pings    int   // round trips per row
	bytes    int64 // throughput transfer
}

func proxySizesOf(short bool) proxySizes {
	if short {
		return proxySizes{connects: 20, pings: 500, bytes: 32 << 20}
	}
	return proxySizes{connects: 200, pings: 5000, bytes: 512 << 20}
}

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
	progress("proxy: building handshake-proxy and toxiproxy-server")
	ours, err := goBuild(dir, "handshake-proxy", "github.com/synhold/synhold/cmd/handshake-proxy")
	if err != nil {
		return nil, err
	}
	theirs, err := goBuild(dir, "toxiproxy-server", "github.com/Shopify/toxiproxy/v2/cmd/server")
	if err != nil {
		return nil, err
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

	oursAPI, stopOurs, err := startAPI(ours)
	if err != nil {
		return nil, err
	}
	defer stopOurs()
	theirsAPI, stopTheirs, err := startAPI(theirs)
	if err != nil {
		return nil, err
	}
	defer stopTheirs()
	apis := map[string]*toxiclient.Client{"handshake-proxy": oursAPI, "toxiproxy": theirsAPI}

	// Forwarding: direct, through each proxy with no toxic.
	for _, via := range []string{"direct", "handshake-proxy", "toxiproxy"} {
		progress("proxy: forwarding %s", via)
		row := ProxyRow{Name: "forward_" + strings.ReplaceAll(via, "-", "_"), Label: "forwarding, " + via, Via: via}
		echoAddr, sinkAddr := echo.Addr().String(), sink.Addr().String()
		if via != "direct" {
			pe, err := newProxy(apis[via], "echo", echoAddr)
			if err != nil {
				return rows, err
			}
			defer pe.Delete()
			ps, err := newProxy(apis[via], "sink", sinkAddr)
			if err != nil {
				return rows, err
			}
			defer ps.Delete()
			echoAddr, sinkAddr = pe.Listen, ps.Listen
		}
		if row.RTT, err = pingPong(echoAddr, sz.pings); err != nil {
			return rows, fmt.Errorf("%s: %w", row.Label, err)
		}
		if row.MBps, err = throughput(sinkAddr, sz.bytes); err != nil {
			return rows, fmt.Errorf("%s: %w", row.Label, err)
		}
		if row.Connect, _, err = connects(echoAddr, sz.connects, 0); err != nil {
			return rows, fmt.Errorf("%s: %w", row.Label, err)
		}
		rows = append(rows, row)
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
		row, err := toxicConnects(dir, theirsAPI, "toxiproxy", echo.Addr().String(), tx.typ, tx.attrs, 0, sz.connects)
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

// startAPI runs a toxiproxy-API server binary on a free loopback port and
// waits until it answers.
func startAPI(bin string) (*toxiclient.Client, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
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
			return nil, nil, fmt.Errorf("%s did not answer on %s: %v", filepath.Base(bin), url, err)
		}
	}
	return toxiclient.NewClient(url), stop, nil
}

var proxySeq atomic.Int64

// newProxy creates a proxy to upstream on a picked port.
func newProxy(api *toxiclient.Client, name, upstream string) (*toxiclient.Proxy, error) {
	return api.CreateProxy(fmt.Sprintf("%s%d", name, proxySeq.Add(1)), "127.0.0.1:0", upstream)
}

// toxicConnects times connects through a proxy with one toxic set.
func toxicConnects(dir string, api *toxiclient.Client, via, upstream, typ string, attrs toxiclient.Attributes, want time.Duration, n int) (ProxyRow, error) {
	row := ProxyRow{Name: typ + "_" + strings.ReplaceAll(via, "-", "_"), Via: via, Toxic: toxicString(typ, attrs), WantUS: us(want)}
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
			row.Wire = Summarize(ds)
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
func connects(addr string, n int, want time.Duration) (Summary, int, error) {
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
			return Summary{}, refused, err
		default:
			c.Close()
		}
		ds = append(ds, took-want)
	}
	return Summarize(ds), refused, nil
}

// pingPong times n 1-byte round trips on one connection to an echo server.
func pingPong(addr string, n int) (Summary, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return Summary{}, err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	b := []byte{1}
	ds := make([]time.Duration, 0, n)
	c.SetDeadline(time.Now().Add(time.Minute))
	for range n {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return Summary{}, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return Summary{}, err
		}
		ds = append(ds, time.Since(start))
	}
	return Summarize(ds), nil
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
	return round3(float64(size) / (1 << 20) / time.Since(start).Seconds()), nil
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
	b.WriteString("Separate processes on loopback; the client's own clock around connect() and 1-byte round trips.\n")
	b.WriteString("For a handshake toxic, connect is the time to connect minus the requested delay (its error).\n\n")
	b.WriteString("\"wire\" is tcpdump's SYN to SYN-ACK (or RST) on lo, minus the requested delay.\n\n")
	b.WriteString("| row | via | toxic | connect p50 µs | connect p99 µs | wire p50 µs | wire p99 µs | wire min µs | refused | RTT p50 µs | RTT p99 µs | MiB/s | note |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %.1f | %.1f | %.1f | %s |\n", r.Name, r.Via, r.Toxic,
			r.Connect.P50US, r.Connect.P99US, r.Wire.P50US, r.Wire.P99US, r.Wire.MinUS, r.Refused, r.RTT.P50US, r.RTT.P99US, r.MBps, r.Note)
	}
	return b.String()
}
