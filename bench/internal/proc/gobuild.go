package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GoBuild builds pkg into dir/name, with flags (such as -overlay FILE)
// before the package.
func GoBuild(dir, name, pkg string, flags ...string) (string, error) {
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build", "-o", bin}, flags...), pkg)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", strings.Join(args[3:], " "), err, out)
	}
	return bin, nil
}

// GoInstall builds pkg at a module version into dir (go install
// pkg@version: independent of this module's go.mod) and returns the binary.
func GoInstall(dir, pkg, version string) (string, error) {
	cmd := exec.Command("go", "install", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", pkg, version, err, out)
	}
	return filepath.Join(dir, filepath.Base(pkg)), nil
}
