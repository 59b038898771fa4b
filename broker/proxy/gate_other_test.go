//go:build !linux

package proxy

import (
	"testing"

	"github.com/synhold/synhold/internal/testenv"
)

// skipWithoutReplay skips t: strategy replay holds handshakes on Linux only.
func skipWithoutReplay(t *testing.T) {
	t.Helper()
	testenv.SkipWithoutFeature(t, "strategy replay (handshakes held on Linux only)", nil)
}
