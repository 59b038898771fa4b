package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// BuildBinary builds the main package pkg (a directory relative to the
// test's working directory, such as ".", or an import path) with go build
// and buildFlags, once per test binary and set of flags, and returns the
// path of the binary. Tests that run a command as a user does (in its own
// process, under another user, with a signal) share the one build: a second
// call, from any test, returns the same path without building again, and a
// call while another builds waits for it.
//
// The binary is built as a user builds it: without -race, even when the
// tests run with -race (on the command line or in GOFLAGS), unless
// buildFlags asks for it, so that a test measures the command's own timing.
// It lies in a directory every user may enter, so that a test may run it as
// user nobody, and the package's TestMain removes it through [Main]: a
// test binary whose TestMain does not call Main fails the test rather than
// leave binaries behind.
//
// A build that fails fails the test with go build's output (the compiler's
// message); every later call for the same package fails the same way.
// Without a go command the test skips, as [GoCommand] does.
func BuildBinary(t testing.TB, pkg string, buildFlags ...string) string {
	t.Helper()
	return binaries.build(t, pkg, buildFlags)
}

// Main runs the tests of m and then removes the binaries [BuildBinary]
// built for them; it returns m.Run's exit code. A package whose tests call
// BuildBinary calls it from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	binaries.open()
	defer binaries.remove()
	return m.Run()
}

// binaries holds the builds of this test binary.
var binaries builder

// builder builds each package (with its flags) once, into a directory of
// its own that remove deletes.
type builder struct {
	mu     sync.Mutex
	opened bool   // Main runs: remove will follow
	dir    string // made at the first build
	builds map[string]*build
	count  int // go build runs, for the test that a second call does not build
}

// build is one package's build: done once, its result kept.
type build struct {
	once sync.Once
	path string
	err  error
}

func (b *builder) open() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opened = true
}

// remove deletes the binaries' directory.
func (b *builder) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	b.dir, b.builds = "", nil
}

func (b *builder) build(t testing.TB, pkg string, flags []string) string {
	t.Helper()
	goCmd := GoCommand(t) // here, not in once.Do: a skip there would leave the build done without a binary
	key := strings.Join(append([]string{pkg}, flags...), "\x00")
	b.mu.Lock()
	if !b.opened {
		b.mu.Unlock()
		t.Fatalf("testenv.BuildBinary(%q): the package's TestMain must call testenv.Main, which removes the binary after the tests", pkg)
	}
	if b.dir == "" {
		dir, err := os.MkdirTemp("", "testenv-build-")
		if err == nil {
			err = os.Chmod(dir, 0o755) // every user may enter it: a test may run the binary as nobody
		}
		if err != nil {
			b.mu.Unlock()
			t.Fatalf("testenv.BuildBinary: a directory for the binaries: %v", err)
		}
		b.dir = dir
	}
	if b.builds == nil {
		b.builds = make(map[string]*build)
	}
	bd := b.builds[key]
	if bd == nil {
		bd = &build{path: filepath.Join(b.dir, strconv.Itoa(len(b.builds)), binaryName(pkg))}
		b.builds[key] = bd
	}
	b.mu.Unlock()

	bd.once.Do(func() {
		b.mu.Lock()
		b.count++
		b.mu.Unlock()
		if bd.err = os.MkdirAll(filepath.Dir(bd.path), 0o755); bd.err != nil {
			return
		}
		// -race=false before the caller's flags: GOFLAGS=-race, meant for
		// the test binary, does not reach the command; a -race in flags
		// comes later and wins.
		args := append([]string{"build", "-race=false", "-o", bd.path}, flags...)
		cmd := exec.Command(goCmd, append(args, pkg)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			bd.err = fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, out)
		}
	})
	if bd.err != nil {
		t.Fatalf("testenv.BuildBinary: %v", bd.err)
	}
	return bd.path
}

// binaryName names the binary of pkg as go build would: after the last
// element of its directory or import path.
func binaryName(pkg string) string {
	if abs, err := filepath.Abs(pkg); err == nil && (pkg == "." || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") || filepath.IsAbs(pkg)) {
		return filepath.Base(abs)
	}
	return path.Base(pkg)
}
