package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synhold/synhold/internal/testenv"
)

// NS is a network namespace.
type NS struct {
	Name string
	// Addr4 and Addr6 are the addresses of its end of the veth pair.
	Addr4, Addr6 netip.Addr
}

// Pair is two namespaces, Server and Client, joined by a veth pair.
type Pair struct {
	Server, Client NS
}

var seq atomic.Int32

// New creates the pair, or skips the test if it cannot (not root, no ip(8)).
func New(t testing.TB) *Pair {
	t.Helper()
	testenv.SkipUnlessRoot(t, "CAP_SYS_ADMIN and CAP_NET_ADMIN (network namespaces)")
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.SkipWithoutFeature(t, "ip(8) from iproute2 (network namespaces)", err)
	}
	n := seq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, n)
	p := &Pair{
		Server: NS{Name: "synhold-s" + id, Addr4: netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", n)), Addr6: netip.MustParseAddr(fmt.Sprintf("fd00:5e5:%x::1", n))},
		Client: NS{Name: "synhold-c" + id, Addr4: netip.MustParseAddr(fmt.Sprintf("198.18.%d.2", n)), Addr6: netip.MustParseAddr(fmt.Sprintf("fd00:5e5:%x::2", n))},
	}
	t.Cleanup(func() {
		ip("netns", "del", p.Server.Name)
		ip("netns", "del", p.Client.Name)
	})
	vs, vc := "vs"+id, "vc"+id
	steps := [][]string{
		{"netns", "add", p.Server.Name},
		{"netns", "add", p.Client.Name},
		{"link", "add", vs, "netns", p.Server.Name, "type", "veth", "peer", "name", vc, "netns", p.Client.Name},
	}
	for _, x := range []struct {
		ns  NS
		dev string
	}{{p.Server, vs}, {p.Client, vc}} {
		steps = append(steps,
			[]string{"-n", x.ns.Name, "addr", "add", x.ns.Addr4.String() + "/24", "dev", x.dev},
			[]string{"-n", x.ns.Name, "addr", "add", x.ns.Addr6.String() + "/64", "dev", x.dev, "nodad"},
			[]string{"-n", x.ns.Name, "link", "set", x.dev, "up"},
			[]string{"-n", x.ns.Name, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if _, err := ip(s...); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.settle(vs, vc); err != nil {
		t.Fatal(err)
	}
	return p
}

// settle waits until both ends of the veth pair can carry packets, then
// gives each namespace a permanent neighbour entry for the other's
// addresses. "ip link set up" returns before the kernel has attached a
// device's queueing discipline (dev_activate runs from the link-watch work
// item, on carrier): until then the device shows "qdisc noop" and drops
// what it is given. A first ARP request or reply dropped so left the
// client's first SYN in the neighbour queue until ARP asked again, 1 s
// later (TestHeldAcrossVeth failed so, about once in 150 runs). With the
// neighbours known, no address resolution runs on the tests' path at all.
func (p *Pair) settle(vs, vc string) error {
	ends := []struct {
		ns, peer NS
		dev      string
	}{{p.Server, p.Client, vs}, {p.Client, p.Server, vc}}
	macs := make(map[string]string)
	deadline := time.Now().Add(5 * time.Second)
	for _, e := range ends {
		for {
			line, err := ip("-n", e.ns.Name, "-o", "link", "show", "dev", e.dev)
			if err != nil {
				return err
			}
			if strings.Contains(line, "LOWER_UP") && !strings.Contains(line, "qdisc noop") {
				_, ether, _ := strings.Cut(line, "link/ether")
				f := strings.Fields(ether)
				if len(f) < 1 {
					return fmt.Errorf("ip -n %s link show dev %s: no link/ether address in %q", e.ns.Name, e.dev, line)
				}
				macs[e.ns.Name] = f[0]
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("veth %s in %s not ready after 5 s: %s", e.dev, e.ns.Name, line)
			}
			time.Sleep(time.Millisecond) // the kernel's link-watch work item
		}
	}
	for _, e := range ends {
		for _, a := range []netip.Addr{e.peer.Addr4, e.peer.Addr6} {
			if _, err := ip("-n", e.ns.Name, "neigh", "replace", a.String(), "lladdr", macs[e.peer.Name], "dev", e.dev, "nud", "permanent"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ip runs ip(8) with args and returns its output.
func ip(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Do runs fn on an OS thread that has entered ns, so that every socket fn
// creates belongs to ns. Goroutines fn starts run in the process's own
// namespace, but sockets keep the namespace they were created in.
func (ns NS) Do(fn func() error) error {
	target, err := os.Open("/var/run/netns/" + ns.Name)
	if err != nil {
		return err
	}
	defer target.Close()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer self.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked if it cannot go back: the runtime then
		// ends it with the goroutine, instead of reusing it in ns.
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}
