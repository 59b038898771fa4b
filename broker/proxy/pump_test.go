package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// pattern is a byte stream in which every 8 bytes are a counter, salted
// per stream: a byte lost, repeated or moved anywhere changes what follows.
type pattern struct {
	salt uint64
	off  int64
}

// next fills b with the stream's next bytes.
func (p *pattern) next(b []byte) {
	for i := range b {
		var w [8]byte
		binary.BigEndian.PutUint64(w[:], uint64(p.off/8)^p.salt)
		b[i] = w[p.off%8]
		p.off++
	}
}

// check reads n bytes of the stream from r and fails at the first byte that
// differs, saying where. It reads slowly, pausing every 256 KiB, so that
// the writer's socket fills and a link holds bytes queued when it hands over.
func (p *pattern) check(r io.Reader, n int64) error {
	buf := make([]byte, 32<<10)
	want := make([]byte, len(buf))
	for i := 0; n > 0; i++ {
		if i%8 == 7 {
			time.Sleep(time.Millisecond)
		}
		k, err := r.Read(buf[:min(int64(len(buf)), n)])
		if k > 0 {
			at := p.off
			p.next(want[:k])
			for i := range k {
				if buf[i] != want[i] {
					return fmt.Errorf("byte %d: got %#x, want %#x", at+int64(i), buf[i], want[i])
				}
			}
			n -= int64(k)
		}
		if err != nil && n > 0 {
			return fmt.Errorf("after %d bytes: %w", p.off, err)
		}
	}
	return nil
}

// pace lets writers write chunk i only once the toggler has made i changes,
// so that the changes happen while bytes are in flight both ways.
type pace struct {
	mu   sync.Mutex
	cond *sync.Cond
	done int
}

func newPace() *pace {
	p := new(pace)
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pace) step() {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pace) wait(i int) {
	p.mu.Lock()
	for p.done < i {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// writeChunks writes the stream in chunks of the given sizes, chunk i once
// the pace allows it.
func writeChunks(w io.Writer, pat *pattern, sizes []int, pc *pace) error {
	for i, n := range sizes {
		pc.wait(i)
		b := make([]byte, n)
		pat.next(b)
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return nil
}

// backTo reports whether the process is back to fds descriptors and g
// goroutines, give or take the API's idle connection, which may come and
// go. Splicing borrows pipes from the runtime's pool: two GCs close the
// pooled ones first.
func backTo(t *testing.T, fds, g int) func() bool {
	return func() bool {
		runtime.GC()
		runtime.GC()
		return testenv.OpenFDs(t) <= fds+2 && goroutines() <= g+4
	}
}

func total(sizes []int) (n int64) {
	for _, s := range sizes {
		n += int64(s)
	}
	return n
}

// TestSwitchMidStream adds and removes data toxics (and a handshake toxic,
// which must not matter) over and over on one connection that carries
// bytes both ways at once, and checks every byte at both ends: each change
// switches a direction between splicing and toxiproxy's link, and none may
// lose, repeat or reorder a byte. Afterwards the descriptors and goroutines
// are back.
func TestSwitchMidStream(t *testing.T) {
	e := newEnv(t, listener.Auto)
	const changes = 72
	rng := rand.New(rand.NewPCG(1, 2))
	chunks := func() []int {
		s := make([]int, changes+1)
		for i := range s {
			s[i] = 1 + rng.IntN(96<<10)
		}
		return s
	}
	upSizes, downSizes := chunks(), chunks()
	pc := newPace()

	// The upstream checks the client's stream and sends its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	upErr := make(chan error, 2)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			upErr <- err
			upErr <- err
			return
		}
		defer c.Close()
		go func() { upErr <- writeChunks(c, &pattern{salt: 2}, downSizes, pc) }()
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		if err := (&pattern{salt: 1}).check(c, total(upSizes)); err != nil {
			upErr <- fmt.Errorf("upstream received: %w", err)
		} else {
			upErr <- nil
		}
		// Hold the connection until the client has read everything.
		io.Copy(io.Discard, c)
	}()

	// The API's keep-alive connection exists before the baseline.
	if _, err := e.client.Proxies(); err != nil {
		t.Fatal(err)
	}
	fds0, g0 := testenv.OpenFDs(t), goroutines()
	p, err := e.client.CreateProxy("busy", "127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	clientErr := make(chan error, 2)
	go func() { clientErr <- writeChunks(c, &pattern{salt: 1}, upSizes, pc) }()
	go func() {
		if err := (&pattern{salt: 2}).check(c, total(downSizes)); err != nil {
			clientErr <- fmt.Errorf("client received: %w", err)
			return
		}
		clientErr <- nil
	}()

	type toxic struct {
		typ     string
		streams []string
		attrs   toxiclient.Attributes
	}
	slicer := toxiclient.Attributes{"average_size": 64, "size_variation": 32, "delay": 0}
	cycle := []toxic{
		{"latency", []string{"upstream"}, toxiclient.Attributes{"latency": 3}},
		{"latency", []string{"downstream"}, toxiclient.Attributes{"latency": 5}},
		{"slicer", []string{"upstream"}, slicer},
		{"slicer", []string{"downstream"}, slicer},
		{"bandwidth", []string{"upstream", "downstream"}, toxiclient.Attributes{"rate": 1 << 20}},
		{"latency", []string{"downstream", "upstream"}, toxiclient.Attributes{"latency": 0, "jitter": 1}},
	}
	if e.srv.support.perConn == nil {
		cycle = append(cycle, toxic{"handshake_delay", []string{"downstream"}, toxiclient.Attributes{"delay": 1}})
	}
	for i := range changes {
		tx := cycle[i%len(cycle)]
		var names []string
		for _, s := range tx.streams {
			name := fmt.Sprintf("%s_%s_%d", tx.typ, s, i)
			if _, err := p.AddToxic(name, tx.typ, s, 1, tx.attrs); err != nil {
				t.Fatalf("change %d: add %s: %v", i, name, err)
			}
			names = append(names, name)
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		for _, name := range names {
			if err := p.RemoveToxic(name); err != nil {
				t.Fatalf("change %d: remove %s: %v", i, name, err)
			}
		}
		pc.step()
		time.Sleep(time.Duration(i%2) * time.Millisecond)
	}
	pc.step()
	for range 2 {
		if err := <-clientErr; err != nil {
			t.Error(err)
		}
		if err := <-upErr; err != nil {
			t.Error(err)
		}
	}
	for _, s := range []string{"upstream", "downstream"} {
		for _, to := range []string{"toxics", "splice"} {
			if n := len(e.log.lines(`"connection switched"`, `"stream":"`+s+`"`, `"to":"`+to+`"`)); n < 10 {
				t.Errorf("%s switched to %s %d times, want at least 10", s, to, n)
			}
		}
	}
	c.Close()
	if err := p.Delete(); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	testenv.WaitFor(t, 20*time.Second, "descriptors and goroutines to return", backTo(t, fds0, g0))
	if !e.srv.idle() {
		t.Error("the server still tracks connections")
	}
}

// TestToxicOnIdleConnection adds a latency toxic to a connection whose
// splice is blocked waiting for data: the next round trip is delayed, and
// once the toxic is removed the connection is fast again.
func TestToxicOnIdleConnection(t *testing.T) {
	e := newEnv(t, listener.Auto)
	up := echoServer(t)
	const latency = 200 * time.Millisecond
	for _, stream := range []string{"upstream", "downstream"} {
		t.Run(stream, func(t *testing.T) {
			p, err := e.client.CreateProxy("idle_"+stream, "127.0.0.1:0", up)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Delete()
			c := dial(t, p.Listen)
			if d := roundTrip(t, c, "before"); d >= latency {
				t.Fatalf("round trip with no toxic took %v", d)
			}
			if _, err := p.AddToxic("slow", "latency", stream, 1, toxiclient.Attributes{"latency": latency.Milliseconds()}); err != nil {
				t.Fatal(err)
			}
			if d := roundTrip(t, c, "during"); d < latency {
				t.Errorf("round trip with a %v latency toxic on %s took %v", latency, stream, d)
			}
			if err := p.RemoveToxic("slow"); err != nil {
				t.Fatal(err)
			}
			// The link may still deliver what it held: the first round
			// trip after the removal can pay the latency once.
			roundTrip(t, c, "drain")
			if d := roundTrip(t, c, "after"); d >= latency {
				t.Errorf("round trip after the toxic's removal took %v", d)
			}
			if n := len(e.log.lines(`"connection switched"`, `"stream":"`+stream+`"`)); n != 2 {
				t.Errorf("%s switched %d times, want 2 (to toxics and back)", stream, n)
			}
		})
	}
}

// TestSpliceCounts checks that bytes that went through a splice are
// counted in the connection's closing log line, as those through a link.
func TestSpliceCounts(t *testing.T) {
	e := newEnv(t, listener.Auto)
	p, err := e.client.CreateProxy("counted", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Listen)
	roundTrip(t, c, "twelve bytes")
	c.Close()
	testenv.WaitFor(t, 10*time.Second, "the connection's closing line", func() bool {
		return len(e.log.lines(`"connection closed"`, `"bytes_up":12`, `"bytes_down":12`)) == 1
	})
}

// TestDataToxicDirections: which directions a chain makes run through toxiproxy's
// links. Handshake toxics are not data toxics; any other toxic is, on its
// own stream only.
func TestDataToxicDirections(t *testing.T) {
	on := func(dir stream.Direction, tx toxics.Toxic) toxics.Toxic {
		return &toxics.ToxicWrapper{Toxic: tx, Direction: dir, Toxicity: 1}
	}
	for _, tc := range []struct {
		name     string
		chain    []toxics.Toxic
		up, down bool
	}{
		{"none", nil, false, false},
		{"handshake toxics only", []toxics.Toxic{
			on(stream.Downstream, &HandshakeDelay{Delay: 10}), on(stream.Upstream, new(HandshakeHold)),
			on(stream.Downstream, &HandshakeRefuse{}),
		}, false, false},
		{"latency downstream", []toxics.Toxic{on(stream.Downstream, &toxics.LatencyToxic{})}, false, true},
		{"slicer upstream beside a handshake_delay", []toxics.Toxic{
			on(stream.Downstream, &HandshakeDelay{}), on(stream.Upstream, &toxics.SlicerToxic{}),
		}, true, false},
		{"noop both ways", []toxics.Toxic{
			on(stream.Upstream, new(toxics.NoopToxic)), on(stream.Downstream, new(toxics.NoopToxic)),
		}, true, true},
		{"reset_peer", []toxics.Toxic{on(stream.Downstream, new(resetPeer))}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if up, down := dataToxics(tc.chain); up != tc.up || down != tc.down {
				t.Errorf("dataToxics = up %v, down %v; want up %v, down %v", up, down, tc.up, tc.down)
			}
		})
	}
}

// TestHandshakeToxicKeepsSplicing: adding and removing a handshake toxic
// leaves a live connection's directions splicing.
func TestHandshakeToxicKeepsSplicing(t *testing.T) {
	e := newEnv(t, listener.Auto)
	skipUnlessPerConn(t, e)
	p, err := e.client.CreateProxy("keeps", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Listen)
	roundTrip(t, c, "before")
	if _, err := p.AddToxic("hs", "handshake_delay", "downstream", 1, toxiclient.Attributes{"delay": 1}); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "during")
	if err := p.RemoveToxic("hs"); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "after")
	// A data toxic does switch it: the log the assertion reads is live.
	if _, err := p.AddToxic("lat", "latency", "downstream", 1, toxiclient.Attributes{"latency": 0}); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "toxic")
	if n := len(e.log.lines(`"connection switched"`)); n != 1 {
		t.Errorf("%d switches, want 1 (the latency toxic's, none for handshake_delay)", n)
	}
}
