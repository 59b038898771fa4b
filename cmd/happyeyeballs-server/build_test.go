package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/synhold/synhold/internal/testenv"
)

var (
	binDir     string // world-readable directory for built binaries
	binDirOnce sync.Once
	binDirErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// sharedDir returns a directory every user can read and enter, so that a
// binary in it can run as nobody.
func sharedDir(t *testing.T) string {
	t.Helper()
	binDirOnce.Do(func() {
		if binDir, binDirErr = os.MkdirTemp("", "happyeyeballs-test-"); binDirErr == nil {
			binDirErr = os.Chmod(binDir, 0o755)
		}
	})
	if binDirErr != nil {
		t.Fatal(binDirErr)
	}
	return binDir
}

// goTool returns the go command that runs this test.
func goTool(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if p, err := exec.LookPath(filepath.Join(strings.TrimSpace(string(out)), "bin", "go")); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		testenv.SkipWithoutFeature(t, "the go command, to build the binary", err)
	}
	return p
}

// buildServer builds the server binary into path.
func buildServer(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command(goTool(t), "build", "-o", path, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}
