// Package testenv gives the tests one way to skip, so that a skip says why,
// and the helpers several packages' tests share (a free port, a count of open
// descriptors, a command's binary built once).
//
// A test skips for one of three reasons, each with its own message prefix so
// that CI can tell them apart (.ci/run fails on the first when run as root,
// lists the others):
//
//   - a missing privilege ([SkipWithoutPrivilege], prefix [PrivilegePrefix]):
//     CI runs as root, so such a skip there is a failure;
//   - a missing kernel or machine feature ([SkipWithoutFeature], prefix
//     [FeaturePrefix]): root cannot help, the machine lacks it;
//   - a slow test under -short ([SkipIfShort], prefix [ShortPrefix]).
//
// Any other skip (t.Skip called directly) is ad hoc, and CI fails on it.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The prefixes of the skip messages, one per reason.
const (
	PrivilegePrefix = "testenv: needs privilege "
	FeaturePrefix   = "testenv: lacks feature "
	ShortPrefix     = "testenv: slow, skipped with -short: "
)

// SkipWithoutPrivilege skips t when err says a privilege is missing
// (errors.Is(err, os.ErrPermission)), naming capability, e.g. "CAP_NET_RAW".
// It returns when err is nil, skips as [SkipWithoutFeature] when err wraps
// errors.ErrUnsupported (the platform cannot, whatever the privilege), and
// fails t on any other error: only a missing privilege is a reason to skip.
func SkipWithoutPrivilege(t testing.TB, err error, capability string) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, errors.ErrUnsupported):
		SkipWithoutFeature(t, "what "+capability+" grants elsewhere", err)
	case errors.Is(err, os.ErrPermission):
		t.Skipf("%s%s: %v", PrivilegePrefix, capability, err)
	default:
		t.Fatalf("probing for %s: %v", capability, err)
	}
}

// SkipUnlessRoot skips t unless the process runs as root, naming the
// capabilities the test needs of root.
func SkipUnlessRoot(t testing.TB, capabilities string) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		SkipWithoutPrivilege(t, &os.PathError{Op: "run as uid " + strconv.Itoa(uid), Path: "root", Err: os.ErrPermission}, capabilities)
	}
}

// SkipWithoutFeature skips t because the kernel or the machine lacks
// feature (e.g. "IPv6 loopback (::1)", "ip(8) from iproute2"); err, when not
// nil, is what showed it.
func SkipWithoutFeature(t testing.TB, feature string, err error) {
	t.Helper()
	if err != nil {
		t.Skipf("%s%s: %v", FeaturePrefix, feature, err)
	}
	t.Skipf("%s%s", FeaturePrefix, feature)
}

// SkipIfShort skips t under go test -short; what says what the test does
// that takes long, and how long (e.g. "two backoff series, about 12 s").
func SkipIfShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(ShortPrefix + what)
	}
}

// SkipWithoutIPv6 skips t when err, from opening an IPv6 socket or binding
// ::1, says the machine has no IPv6 (EAFNOSUPPORT: no IPv6 in the kernel;
// EADDRNOTAVAIL: no ::1 on lo), as a missing feature. It returns when err is
// nil and fails t on any other error.
func SkipWithoutIPv6(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EADDRNOTAVAIL):
		SkipWithoutFeature(t, "IPv6 loopback (::1)", err)
	default:
		t.Fatalf("IPv6 on loopback: %v", err)
	}
}

// GoCommand returns the path of the go command, for tests that build a
// binary or a package of their own; without one the test skips as a missing
// feature. (go test puts its own GOROOT/bin first in the test's PATH.)
func GoCommand(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		SkipWithoutFeature(t, "the go command, to build a binary", err)
	}
	return p
}

// FreePort returns a TCP port number that nothing listens on right now, on
// either family: free on 0.0.0.0 and on [::] at once (so on 127.0.0.1 and
// ::1 too). Another process may take it before the test binds it; tests use
// it only where a command wants a port number rather than a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l4, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", net.JoinHostPort("::", strconv.Itoa(port)))
		l4.Close()
		if err == nil {
			l6.Close()
			return port
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			SkipWithoutFeature(t, "IPv6 sockets", err)
		}
	}
	t.Fatal("testenv: no port free on both families after 20 tries")
	return 0
}

// SYNSent reports whether a TCP socket of this host, over IPv4, is in
// SYN_SENT to port (a client whose handshake is held), from /proc/net/tcp:
// the remote address's field, state 02. Without /proc/net/tcp the test
// skips as a missing feature.
func SYNSent(t testing.TB, port int) bool {
	t.Helper()
	suffix := fmt.Sprintf(":%04X", port)
	return synSentIn(t, "/proc/net/tcp", func(remote string) bool { return strings.HasSuffix(remote, suffix) })
}

// OpenFDs counts the process's open descriptors (from /proc/self/fd, or
// /dev/fd where there is no /proc), for tests that check nothing leaks.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		var err2 error
		if ents, err2 = os.ReadDir("/dev/fd"); err2 != nil {
			SkipWithoutFeature(t, "a list of open descriptors (/proc/self/fd or /dev/fd)", errors.Join(err, err2))
		}
	}
	return len(ents)
}
