package testenv

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildBinaryOnce: calls for one package, at once from parallel tests
// and then again, run go build once and share its binary; other flags are
// another build; the binary is built without -race unless asked, even with
// GOFLAGS=-race; remove deletes every binary.
func TestBuildBinaryOnce(t *testing.T) {
	t.Setenv("GOFLAGS", "-race") // as a user's environment might say, for the test binary
	b := &builder{opened: true}
	t.Cleanup(b.remove)
	paths := make([]string, 4)
	t.Run("group", func(t *testing.T) {
		for i := range paths {
			t.Run("", func(t *testing.T) {
				t.Parallel()
				paths[i] = b.build(t, "./testdata/hello", nil)
			})
		}
	})
	if again := b.build(t, "./testdata/hello", nil); b.count != 1 || again != paths[0] {
		t.Fatalf("%d builds, paths %q then %q; want one build, one path", b.count, paths, again)
	}
	for _, p := range paths[1:] {
		if p != paths[0] {
			t.Fatalf("paths %q; want one", paths)
		}
	}
	if filepath.Base(paths[0]) != "hello" {
		t.Errorf("binary %s, want it named after its package, hello", paths[0])
	}
	raced := b.build(t, "./testdata/hello", []string{"-race"})
	if b.count != 2 || raced == paths[0] {
		t.Errorf("with -race: %d builds, path %s (without: %s); want a second build of its own", b.count, raced, paths[0])
	}
	for _, tc := range []struct{ bin, want string }{
		{paths[0], "hello race=false\n"},
		{raced, "hello race=true\n"},
	} {
		if out, err := exec.Command(tc.bin).Output(); err != nil || string(out) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.bin, out, err, tc.want)
		}
	}
	fi, err := os.Stat(filepath.Dir(filepath.Dir(paths[0])))
	if err != nil || fi.Mode().Perm()&0o005 != 0o005 {
		t.Errorf("the binaries' directory: %v, %v; want one every user may enter", fi.Mode(), err)
	}
	b.remove()
	for _, p := range []string{paths[0], raced} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after remove: %v, want it gone", p, err)
		}
	}
}

// TestBuildBinaryFails: a package that does not compile fails the test with
// the compiler's message, once built; so does a test binary whose TestMain
// does not call Main (nothing would remove the binary).
func TestBuildBinaryFails(t *testing.T) {
	GoCommand(t) // its skip on the test's own goroutine
	b := &builder{opened: true}
	t.Cleanup(b.remove)
	for _, tc := range []struct {
		name  string
		b     *builder
		pkg   string
		count int
		want  []string
	}{
		{"broken", b, "./testdata/broken", 1, []string{"testdata/broken/main.go:6:", `cannot use "not a number"`}},
		{"broken again, not rebuilt", b, "./testdata/broken", 1, []string{`cannot use "not a number"`}},
		{"no Main", &builder{}, "./testdata/hello", 0, []string{"TestMain must call testenv.Main"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(func(tb testing.TB) { tc.b.build(tb, tc.pkg, nil) })
			for _, w := range tc.want {
				if !strings.Contains(r.failed, w) {
					t.Errorf("failure %q; want it to say %q", r.failed, w)
				}
			}
			if tc.b.count != tc.count {
				t.Errorf("%d builds, want %d", tc.b.count, tc.count)
			}
		})
	}
}

func TestBinaryName(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ pkg, want string }{
		{".", filepath.Base(wd)},
		{"./testdata/hello", "hello"},
		{"../testenv", "testenv"},
		{"github.com/synhold/synhold/cmd/happyeyeballs-server", "happyeyeballs-server"},
	} {
		if got := binaryName(tc.pkg); got != tc.want {
			t.Errorf("binaryName(%q) = %q, want %q", tc.pkg, got, tc.want)
		}
	}
}
