package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// A pump moves one direction of a pair, from src to dst. While its
// direction has no data toxic it splices: (*net.TCPConn).ReadFrom another
// *net.TCPConn, which the kernel does socket to socket through a pipe
// (splice(2)), with no copy in user space and no goroutine but the pump's.
// While the direction has a data toxic it runs a toxiproxy link, as
// toxiproxy does, so that every toxic behaves as toxiproxy documents it.
//
// A change of mode stops the running one at a byte boundary: a read
// deadline in the past ends a blocked splice (the bytes it has read are
// written out first: net's splice drains its pipe before it returns), or
// ends the link's reads with io.EOF, after which the link delivers what it
// holds and closes its output, which the pump takes as "drained". The next
// mode then starts from the next unread byte, so that no byte is lost or
// reordered.
type pump struct {
	f    *forwarder
	name string // the link's name, less a count of links
	dir  stream.Direction
	src  *end
	dst  *end
	// tcp: both ends are *net.TCPConn and can be spliced; otherwise the
	// pump always runs a link.
	tcp bool
	// labels are the byte counters' (see countSpliced), as the proxy's
	// run that accepted the connection had them.
	labels []string

	mu       sync.Mutex
	toxic    bool // the direction has a data toxic: run a link
	stopping bool // a change of mode is pending: the running one is being stopped
	running  bool // the mode running (true: a link)
	modes    int  // modes run so far: names links
}

// aLongTimeAgo is a read deadline in the past: it ends a blocked read now.
var aLongTimeAgo = time.Unix(1, 0)

func newPump(f *forwarder, name string, dir stream.Direction, src, dst *end, toxic bool) *pump {
	_, a := src.c.(*net.TCPConn)
	_, b := dst.c.(*net.TCPConn)
	return &pump{f: f, name: name, dir: dir, src: src, dst: dst, tcp: a && b, toxic: toxic,
		labels: []string{dir.String(), f.tp.Name, f.tp.Listen, f.tp.Upstream}}
}

// want sets whether the direction has a data toxic, and stops the running
// mode if it is not the one wanted. It never blocks on the data path.
func (p *pump) want(toxic bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.toxic = toxic
	if p.tcp && p.running != toxic && !p.stopping {
		p.stopping = true
		p.src.c.SetReadDeadline(aLongTimeAgo)
	}
}

// stopped reports whether the running mode is being stopped.
func (p *pump) stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// run moves bytes until either side closes, switching modes as asked. A
// link runs on toxiproxy's goroutines: run returns once it has started it,
// and the link's hand-over runs it again (see linkDest.Close), so that a
// direction under toxics costs no goroutine of the pump's.
func (p *pump) run() {
	for {
		p.mu.Lock()
		if p.stopping {
			// The stop's deadline (want's, the only one) ended the last
			// mode or came before the first: the next mode's reads wait.
			p.stopping = false
			p.src.c.SetReadDeadline(time.Time{})
		}
		link := p.toxic || !p.tcp
		switched := p.modes > 0 && link != p.running
		p.running = link
		p.modes++
		n := p.modes
		p.mu.Unlock()
		if switched {
			p.f.log.Debug("connection switched", "stream", p.dir.String(), "to", modeName(link), "client", p.name)
		}
		if link {
			p.link(n)
			return
		}
		if !p.splice() {
			return
		}
	}
}

func modeName(link bool) string {
	if link {
		return "toxics"
	}
	return "splice"
}

// splice copies src to dst in the kernel until src's end, an error, or a
// change of mode (it then returns true).
func (p *pump) splice() bool {
	n, err := p.dst.c.(*net.TCPConn).ReadFrom(p.src.c.(*net.TCPConn))
	p.src.read.Add(n)
	p.countSpliced(n)
	if errors.Is(err, os.ErrDeadlineExceeded) && p.stopped() {
		return true
	}
	// As toxiproxy's link does: the end of src closes dst; the pump of
	// the other direction then finds its source closed and closes src.
	p.dst.Close()
	return false
}

// countSpliced adds n spliced bytes to toxiproxy's byte counters (with
// -proxy-metrics), read and written, under the labels a link would use:
// a connection is counted the same however it was forwarded.
func (p *pump) countSpliced(n int64) {
	m := p.f.s.metrics
	if m == nil || m.bytes == nil {
		return
	}
	m.bytes.ReceivedBytesTotal.WithLabelValues(p.labels...).Add(float64(n))
	m.bytes.SentBytesTotal.WithLabelValues(p.labels...).Add(float64(n))
}

// link starts the n-th toxiproxy link of the pump.
func (p *pump) link(n int) {
	in := &linkSource{p: p}
	out := &linkDest{p: p, in: in}
	p.f.tp.Toxics.StartLink(p.f.s.tp, p.name+p.dir.String()+"#"+strconv.Itoa(n), in, out, p.dir)
}

// linkSource is the src end as a link reads it: a read ended by a change of
// mode is the end of the link's input.
type linkSource struct {
	p       *pump
	stopped atomic.Bool // Read returned io.EOF for a change of mode
}

func (s *linkSource) Read(b []byte) (int, error) {
	n, err := s.p.src.c.Read(b)
	s.p.src.read.Add(int64(n))
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && s.p.stopped() {
		s.stopped.Store(true)
		return n, io.EOF
	}
	return n, err
}

// linkDest is the dst end as a link writes it. The link closes it when its
// input has ended and it has written everything: after a change of mode
// that is the hand-over, and the socket stays open for the pump's next
// mode; otherwise the connection is over.
type linkDest struct {
	p  *pump
	in *linkSource
}

func (d *linkDest) Write(b []byte) (int, error) { return d.p.dst.c.Write(b) }

func (d *linkDest) Close() error {
	if d.in.stopped.Load() {
		// Not on this goroutine: the link removes itself from
		// toxiproxy's collection after Close returns.
		go d.p.run()
		return nil
	}
	return d.p.dst.Close()
}

// dataToxics reports, per direction, whether a chain has a toxic that acts
// on data: any but the handshake toxics, whose Pipe passes data through.
func dataToxics(chain []toxics.Toxic) (up, down bool) {
	for _, t := range chain {
		w, ok := t.(*toxics.ToxicWrapper)
		if !ok {
			continue
		}
		if _, ok := w.Toxic.(handshakeToxic); ok {
			continue
		}
		if w.Direction == stream.Upstream {
			up = true
		} else {
			down = true
		}
	}
	return up, down
}
