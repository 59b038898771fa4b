package proxybench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/synhold/synhold/bench/internal/stats"
	"github.com/synhold/synhold/bench/internal/tcpdump"
	"github.com/synhold/synhold/listener/capture"
)

var proxySeq atomic.Int64

// newProxy creates a proxy to upstream on a picked port.
func newProxy(api *toxiclient.Client, name, upstream string) (*toxiclient.Proxy, error) {
	return api.CreateProxy(fmt.Sprintf("%s%d", name, proxySeq.Add(1)), "127.0.0.1:0", upstream)
}

// toxicConnects times connects through a proxy with one toxic set.
func toxicConnects(dir string, api *toxiclient.Client, via, upstream, typ string, attrs toxiclient.Attributes, want time.Duration, n int) (Row, error) {
	row := Row{Name: typ + "_" + rowName(via), Via: via, Toxic: toxicString(typ, attrs), WantUS: stats.US(want)}
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
// port.
type proxyDump struct {
	*tcpdump.Dump
	file string
	port uint16
}

// startProxyDump starts tcpdump on port and returns once it listens.
func startProxyDump(file, port string) (*proxyDump, error) {
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	d, err := tcpdump.Start(file, fmt.Sprintf("tcp port %d and tcp[13] & 6 != 0", p))
	if err != nil {
		return nil, err
	}
	return &proxyDump{Dump: d, file: file, port: uint16(p)}, nil
}

// stop stops tcpdump once it has written what the kernel delivered.
func (d *proxyDump) stop() error {
	_, err := d.Stop()
	return err
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
