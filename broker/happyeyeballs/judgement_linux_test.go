package happyeyeballs

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
	"golang.org/x/sys/unix"
)

// attempt is one connection attempt of a scripted client: a non-blocking
// connect(2), so that the SYN has left when startAttempt returns and two
// attempts' order is the order of the calls.
type attempt struct {
	family        int
	fd            int
	before, after time.Time // around connect(2): the SYN left in between
	abandoned     atomic.Bool
	connected     chan error
}

func startAttempt(t *testing.T, family int, to netip.AddrPort) *attempt {
	t.Helper()
	var domain int
	var sa unix.Sockaddr
	if family == 4 {
		domain, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	} else {
		domain, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(to.Port()), Addr: to.Addr().As16()}
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(os.NewSyscallError("socket", err))
	}
	a := &attempt{family: family, fd: fd, connected: make(chan error, 1)}
	a.before = time.Now()
	err = unix.Connect(fd, sa)
	a.after = time.Now()
	if !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		t.Fatalf("connect IPv%d: %v, want EINPROGRESS", family, err)
	}
	go a.wait()
	return a
}

// wait polls until the handshake completes (or fails), or the attempt is
// abandoned.
func (a *attempt) wait() {
	for !a.abandoned.Load() {
		fds := []unix.PollFd{{Fd: int32(a.fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 5)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err == nil {
			var soerr int
			if soerr, err = unix.GetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
		}
		a.connected <- err
		return
	}
	a.connected <- errors.New("abandoned")
}

// conn turns a connected attempt into a net.Conn (the descriptor moves).
func (a *attempt) conn(t *testing.T) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(a.fd), "attempt")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// script is a client of known behaviour.
type script struct {
	first   int           // the family tried first
	stagger time.Duration // when the other family is tried, unless the first connected
	single  bool          // never try the other family
	abandon bool          // give up the first attempt when starting the second (no race)
}

// played is what a scripted client did.
type played struct {
	attempts []*attempt // in the order started
	winner   int
	byte     byte
}

// play runs sc against pair p: the first attempt, then, if it has not
// connected after the stagger, the second; the first of them to connect
// wins, and the family byte is read from it.
func play(t *testing.T, p Pair, sc script) played {
	t.Helper()
	var pl played
	a := startAttempt(t, sc.first, p.Addr(sc.first))
	pl.attempts = append(pl.attempts, a)
	defer func() {
		for _, a := range pl.attempts {
			if a.fd >= 0 {
				a.abandoned.Store(true)
				unix.Close(a.fd)
			}
		}
	}()
	timeout := time.After(10 * time.Second)
	next := time.After(sc.stagger)
	switch {
	case sc.single:
		next = nil
	case sc.stagger == 0: // both at once: no timer between the calls
		next = nil
		pl.attempts = append(pl.attempts, startAttempt(t, 10-sc.first, p.Addr(10-sc.first)))
	}
	var win *attempt
	for win == nil {
		select {
		case <-next:
			next = nil
			if sc.abandon {
				a.abandoned.Store(true)
				<-a.connected
				unix.Close(a.fd)
				a.fd = -1
			}
			b := startAttempt(t, 10-sc.first, p.Addr(10-sc.first))
			pl.attempts = append(pl.attempts, b)
		case err := <-pl.attempts[0].connected:
			win = checkConnected(t, pl.attempts[0], err)
		case err := <-lastOf(pl.attempts).connected:
			win = checkConnected(t, lastOf(pl.attempts), err)
		case <-timeout:
			t.Fatal("no attempt connected in 10 s")
		}
	}
	c := win.conn(t)
	win.fd = -1
	defer c.Close()
	pl.winner = win.family
	pl.byte = readByte(t, c)
	return pl
}

func lastOf(as []*attempt) *attempt { return as[len(as)-1] }

func checkConnected(t *testing.T, a *attempt, err error) *attempt {
	t.Helper()
	if err != nil {
		t.Fatalf("IPv%d attempt: %v", a.family, err)
	}
	return a
}

// delayBounds is what the client did between its two attempts' SYNs: at
// least the second connect's start less the first's end, at most the
// second's end less the first's start.
func (pl played) delayBounds() (lo, hi time.Duration, ok bool) {
	if len(pl.attempts) < 2 {
		return 0, 0, false
	}
	a, b := pl.attempts[0], pl.attempts[1]
	return b.before.Sub(a.after), b.after.Sub(a.before), true
}

// judgementCases are clients of known behaviour, and what the server must
// make of them. The pairs' fast side completes at testFast (400 ms), the
// slow side at judgeSlow (1.2 s): after the first SYN retransmission (1 s).
var judgementCases = []struct {
	name   string
	req    byte
	sc     script
	first  Family
	winner Family
	want   Conformance
	devs   []Deviation
}{
	{"IPv6 first, 250 ms", 0x04, script{first: 6, stagger: 250 * time.Millisecond}, 6, 6, Conforms, nil},
	{"IPv6 first, 250 ms, IPv6 slow", 0x06, script{first: 6, stagger: 250 * time.Millisecond}, 6, 4, Conforms, nil},
	{"IPv6 first, 250 ms, same port", 0x14, script{first: 6, stagger: 250 * time.Millisecond}, 6, 6, Conforms, nil},
	{"IPv4 first", 0x04, script{first: 4, stagger: 250 * time.Millisecond}, 4, 6, Deviates, []Deviation{IPv4First}},
	{"both at once", 0x04, script{first: 6}, 6, 6, Deviates, []Deviation{NoAttemptDelay}},
	{"50 ms", 0x06, script{first: 6, stagger: 50 * time.Millisecond}, 6, 4, Deviates, []Deviation{ShortAttemptDelay}},
	{"one family only", 0x04, script{first: 6, single: true}, 6, 6, Deviates, []Deviation{SingleFamily}},
	{"waits for the slow side", 0x06, script{first: 6, single: true}, 6, 6, Deviates, []Deviation{SingleFamily, SlowWinner}},
	{"does not race", 0x14, script{first: 6, stagger: 250 * time.Millisecond, abandon: true}, 6, 4, Deviates, []Deviation{SlowWinner}},
}

const judgeSlow = 1200 * time.Millisecond

// TestJudgements plays each client of known behaviour against a real
// server and checks the judgement, over the control port and in the log:
// every field, and the attempt delay within 2 ms of what the client did.
func TestJudgements(t *testing.T) {
	needReplay(t)
	runJudgements(t)
}

// TestJudgementsUnderLoad plays the same clients while busy processes
// compete for every core.
func TestJudgementsUnderLoad(t *testing.T) {
	needReplay(t)
	testenv.SkipIfShort(t, "nine clients' pairs while busy processes take every core: about 2 s of every core")
	hogCPUs(t)
	runJudgements(t)
}

func runJudgements(t *testing.T) {
	hs := startServer(t, Config{FastDelay: testFast, SlowDelay: judgeSlow, Spares: 1})
	c := &Client{Addr: hs.ctl4}
	// Rarely, on a loaded machine, the capture misses a pair's SYN (the
	// handshake then completes at the client's retransmission, 1 s on);
	// the server must then say unknown, and why. One such pair in a run is
	// the listener's affair; two fail the test.
	var blind atomic.Int32
	t.Cleanup(func() {
		if n := blind.Load(); n > 1 {
			t.Errorf("%d pairs judged unknown: the capture missed their SYNs", n)
		}
	})
	for _, tc := range judgementCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := *c
			c.SamePort = tc.req&0x10 != 0
			p, err := c.Pair(ctx, int(tc.req&0x0F))
			if err != nil {
				t.Fatalf("%v; the server's log:\n%s", err, hs.log.Bytes())
			}
			pl := play(t, p, tc.sc)
			if pl.winner != int(tc.winner) || pl.byte != FamilyByte(pl.winner) {
				t.Fatalf("the client connected over IPv%d and read 0x%02x; the test expects IPv%d", pl.winner, pl.byte, tc.winner)
			}
			j, err := c.Judgement(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", j)
			if j.Verdict == Unknown && j.First == 0 && j.Why != "" {
				blind.Add(1)
				t.Logf("the capture saw no SYN of pair %d: %s", j.Pair, j.Why)
				checkJudgedLine(t, hs, j)
				return
			}
			checkJudgement(t, j, pl, tc.first, tc.winner, tc.want, tc.devs)
			checkJudgedLine(t, hs, j)
		})
	}
}

func checkJudgement(t *testing.T, j Judgement, pl played, first, winner Family, want Conformance, devs []Deviation) {
	t.Helper()
	lo, hi, two := pl.delayBounds()
	if two {
		at := (lo + hi) / 2
		// Where the client's bounds straddle a threshold (10 ms between
		// connects that took 18 ms under load), only the SYNs' own interval,
		// which the server measured, says which side it fell on; the checks
		// below hold that measure within the bounds.
		if j.AttemptDelayMS != nil {
			if got := time.Duration(*j.AttemptDelayMS * float64(time.Millisecond)); got >= lo && got <= hi {
				at = got
			}
		}
		devs = delayDeviation(devs, at)
	} else if !slices.Contains(devs, SingleFamily) {
		// The first attempt connected before the client's late timer
		// started the second: it did try one family only.
		devs = delayDeviation(append(slices.Clone(devs), SingleFamily), time.Second)
	}
	if did := map[bool]Conformance{true: Conforms, false: Deviates}[len(devs) == 0]; did != want {
		t.Logf("the client's timing (attempts %v to %v apart) makes this case %v %v, not %v", lo, hi, did, devs, want)
		want = did
	}
	if j.Pair == 0 || j.First != first || j.Winner != winner || j.Verdict != want {
		t.Errorf("pair %d first %v winner %v verdict %v; want a pair, %v, %v, %v (the client's delay %v to %v)", j.Pair, j.First, j.Winner, j.Verdict, first, winner, want, lo, hi)
	}
	if !slices.Equal(j.Deviations, append([]Deviation{}, devs...)) {
		t.Errorf("deviations %v, want %v", j.Deviations, devs)
	}
	switch {
	case !two && j.AttemptDelayMS != nil:
		t.Errorf("attempt delay %v ms for a client that tried one family", *j.AttemptDelayMS)
	case two && j.AttemptDelayMS == nil:
		t.Errorf("no attempt delay; the client tried both families %v to %v apart", lo, hi)
	case two:
		got := time.Duration(*j.AttemptDelayMS * float64(time.Millisecond))
		// The SYNs left within each connect(2): the server's delay must lie
		// between the calls' bounds (widened by its 10 µs rounding), and
		// within 2 ms of the client's own.
		mid := (lo + hi) / 2
		if got < lo-10*time.Microsecond || got > hi+10*time.Microsecond || (got-mid).Abs() > 2*time.Millisecond+(hi-lo)/2 {
			t.Errorf("attempt delay %v, the client's %v to %v", got, lo, hi)
		}
	}
	if j.Why == "" {
		t.Error("no why")
	}
}

// checkJudgedLine checks the "pair judged" line of j's pair: exactly the
// fields scripts rely on, with j's values.
func checkJudgedLine(t *testing.T, hs *testServer, j Judgement) {
	t.Helper()
	var line map[string]any
	testenv.WaitFor(t, 5*time.Second, "the pair judged line of pair "+strconv.FormatUint(j.Pair, 10), func() bool {
		for _, r := range hs.log.records("pair judged") {
			if r["pair"] == float64(j.Pair) {
				line = r
			}
		}
		return line != nil
	})
	var keys []string
	for k := range line {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"attempt_delay_ms", "deviations", "first", "level", "msg", "pair", "time", "verdict", "why", "winner"}; !slices.Equal(keys, want) {
		t.Errorf("pair judged fields %v, want %v", keys, want)
	}
	var devs []any
	for _, d := range j.Deviations {
		devs = append(devs, string(d))
	}
	asJSON := func(f Family) any {
		if f == 0 {
			return nil
		}
		return f.String()
	}
	var delay any
	if j.AttemptDelayMS != nil {
		delay = *j.AttemptDelayMS
	}
	gotDevs, _ := line["deviations"].([]any)
	if line["first"] != asJSON(j.First) || line["winner"] != asJSON(j.Winner) || line["attempt_delay_ms"] != delay ||
		line["verdict"] != string(j.Verdict) || line["why"] != j.Why || !slices.Equal(gotDevs, devs) || line["deviations"] == nil {
		t.Errorf("pair judged line %v, want the judgement %+v", line, j)
	}
}

// hogCPUs keeps every core busy with processes of its own until the test
// ends.
func hogCPUs(t *testing.T) {
	for range 2 * runtime.NumCPU() {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
}

// delayDeviation replaces the attempt-delay deviation of devs with the one
// the client's own delay d calls for: on a loaded machine a 50 ms timer
// may fire past 100 ms, and the judgement must follow what the client did.
func delayDeviation(devs []Deviation, d time.Duration) []Deviation {
	var out []Deviation
	for _, x := range deviationOrder {
		switch x {
		case NoAttemptDelay:
			if d < minAttemptDelay {
				out = append(out, x)
			}
		case ShortAttemptDelay:
			if d >= minAttemptDelay && d < shortAttemptDelay {
				out = append(out, x)
			}
		case LongAttemptDelay:
			if d > maxAttemptDelay {
				out = append(out, x)
			}
		default:
			if slices.Contains(devs, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// TestGoDialerJudged judges Go's own net.Dialer, a real client, dialling a
// name that resolves to ::1 and 127.0.0.1 on same-port pairs: its default
// 300 ms FallbackDelay conforms, 50 ms is short, and with fast fallback
// disabled it waits for IPv6 alone.
func TestGoDialerJudged(t *testing.T) {
	needReplay(t)
	resolver := fakeResolver(t)
	hs := startServer(t, Config{FastDelay: testFast, SlowDelay: testSlow})
	for _, tc := range []struct {
		name     string
		slow     int
		fallback time.Duration
		delay    time.Duration // the attempt delay it must show; 0 for none
		winner   Family
		want     Conformance
		devs     []Deviation
	}{
		{"default, IPv4 slow", 4, 0, 300 * time.Millisecond, 6, Conforms, nil},
		{"default, IPv6 slow", 6, 0, 300 * time.Millisecond, 4, Conforms, nil},
		{"FallbackDelay 50ms", 6, 50 * time.Millisecond, 50 * time.Millisecond, 4, Deviates, []Deviation{ShortAttemptDelay}},
		{"no fast fallback, IPv6 slow", 6, -1, 0, 6, Deviates, []Deviation{SingleFamily, SlowWinner}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := &Client{Addr: hs.ctl4, SamePort: true}
			p, err := c.Pair(ctx, tc.slow)
			if err != nil {
				t.Fatal(err)
			}
			d := net.Dialer{Resolver: resolver, FallbackDelay: tc.fallback}
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("happyeyeballs.test", strconv.Itoa(int(p.IPv4.Port()))))
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
			j, err := c.Judgement(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s %v: %s", tc.name, j.Verdict, j.Deviations, j.Why)
			if j.First != 6 || j.Winner != tc.winner || j.Verdict != tc.want || !slices.Equal(j.Deviations, append([]Deviation{}, tc.devs...)) {
				t.Errorf("judgement %+v, want first ipv6, winner %v, %v %v", j, tc.winner, tc.want, tc.devs)
			}
			switch got := j.AttemptDelayMS; {
			case tc.delay == 0 && got != nil:
				t.Errorf("attempt delay %v ms, want none", *got)
			case tc.delay != 0 && got == nil:
				t.Error("no attempt delay")
			// Go starts the fallback timer before the primary's goroutine
			// has sent its SYN: on a loaded machine the SYNs can be a few ms
			// closer than FallbackDelay (48.84 ms for 50 ms was seen).
			case tc.delay != 0 && (*got < float64((tc.delay-5*time.Millisecond).Milliseconds()) || *got > float64((tc.delay+testTol).Milliseconds())):
				t.Errorf("attempt delay %v ms, want %v, from 5 ms less to %v more", *got, tc.delay, testTol)
			}
		})
	}
}
