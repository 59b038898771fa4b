//go:build !linux

package proxy

import (
	"testing"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// skipWithoutReplay skips t: strategy replay holds handshakes on Linux
// only (listener.Probe's error wraps errors.ErrUnsupported, a missing
// feature).
func skipWithoutReplay(t *testing.T) {
	t.Helper()
	_, err := listener.Probe()
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
}
