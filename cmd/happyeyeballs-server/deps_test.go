package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/synhold/synhold/internal/testenv"
)

// TestNoGRPC checks that the Happy Eyeballs server links no gRPC package:
// the two control protocols live in packages of their own so that this
// binary does not carry the other's dependencies.
func TestNoGRPC(t *testing.T) {
	goBin := testenv.GoCommand(t)
	for _, pkg := range []string{".", "github.com/synhold/synhold/broker/happyeyeballs"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %q", pkg, deps)
		}
		for _, d := range deps {
			if d == "google.golang.org/grpc" || strings.HasPrefix(d, "google.golang.org/grpc/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
