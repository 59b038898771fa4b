package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// recorder is a testing.TB that records a skip or a failure and ends the
// goroutine as the real one does.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own (Goexit ends it).
func run(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestSkips(t *testing.T) {
	denied := &fs.PathError{Op: "socket", Path: "AF_PACKET", Err: os.ErrPermission}
	for _, tc := range []struct {
		name        string
		f           func(testing.TB)
		skip, fatal string // the message's start; "" for none
	}{
		{"privilege, no error", func(t testing.TB) { SkipWithoutPrivilege(t, nil, "CAP_NET_RAW") }, "", ""},
		{"privilege, permission denied", func(t testing.TB) { SkipWithoutPrivilege(t, denied, "CAP_NET_RAW") }, PrivilegePrefix + "CAP_NET_RAW: socket AF_PACKET", ""},
		{"privilege, EPERM wrapped", func(t testing.TB) {
			SkipWithoutPrivilege(t, fmt.Errorf("setsockopt: %w", syscall.EPERM), "CAP_NET_ADMIN")
		}, PrivilegePrefix + "CAP_NET_ADMIN: setsockopt", ""},
		{"privilege, unsupported here", func(t testing.TB) {
			SkipWithoutPrivilege(t, fmt.Errorf("capture on plan9: %w", errors.ErrUnsupported), "CAP_NET_RAW")
		}, FeaturePrefix + "what CAP_NET_RAW grants elsewhere: capture on plan9", ""},
		{"privilege, another error fails", func(t testing.TB) { SkipWithoutPrivilege(t, syscall.EINVAL, "CAP_NET_RAW") }, "", "probing for CAP_NET_RAW"},
		{"feature with its error", func(t testing.TB) { SkipWithoutFeature(t, "IPv6 loopback (::1)", syscall.EADDRNOTAVAIL) }, FeaturePrefix + "IPv6 loopback (::1): cannot assign", ""},
		{"feature alone", func(t testing.TB) { SkipWithoutFeature(t, "ip(8) from iproute2", nil) }, FeaturePrefix + "ip(8) from iproute2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.f)
			if !strings.HasPrefix(r.skipped, tc.skip) || (tc.skip == "") != (r.skipped == "") {
				t.Errorf("skipped %q, want a skip starting %q", r.skipped, tc.skip)
			}
			if !strings.HasPrefix(r.failed, tc.fatal) || (tc.fatal == "") != (r.failed == "") {
				t.Errorf("failed %q, want a failure starting %q", r.failed, tc.fatal)
			}
		})
	}
}

// TestPrefixesDistinct guards the one thing CI relies on: no message of one
// kind starts like another's.
func TestPrefixesDistinct(t *testing.T) {
	ps := []string{PrivilegePrefix, FeaturePrefix, ShortPrefix}
	for i, a := range ps {
		for j, b := range ps {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("prefix %q starts with %q: CI could not tell them apart", a, b)
			}
		}
	}
}

// TestCIKnowsThePrefixes checks that .ci/run looks for the prefixes as they
// are, so that renaming one here cannot silently turn a kind of skip into an
// ad hoc one (or let privilege skips pass).
func TestCIKnowsThePrefixes(t *testing.T) {
	b, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{PrivilegePrefix, FeaturePrefix, ShortPrefix} {
		if !strings.Contains(string(b), strings.TrimSpace(p)) {
			t.Errorf(".ci/run does not look for %q", strings.TrimSpace(p))
		}
	}
}

func TestSkipIfShort(t *testing.T) {
	r := run(func(t testing.TB) { SkipIfShort(t, "about 10 s") })
	if testing.Short() != (r.skipped == ShortPrefix+"about 10 s") {
		t.Errorf("short %v, skipped %q", testing.Short(), r.skipped)
	}
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err != nil {
			if addr == "::1" && !errors.Is(err, syscall.EADDRINUSE) {
				SkipWithoutFeature(t, "IPv6 loopback (::1)", err)
			}
			t.Fatalf("port %d from FreePort: %v", p, err)
		}
		ln.Close()
	}
}

func TestOpenFDs(t *testing.T) {
	before := OpenFDs(t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	during := OpenFDs(t)
	f.Close()
	if during != before+1 {
		t.Errorf("OpenFDs: %d before opening a file, %d with it open; want one more", before, during)
	}
}
