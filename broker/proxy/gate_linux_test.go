package proxy

import (
	"os"
	"strings"
	"syscall"
	"testing"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// skipWithoutReplay skips t unless a proxy can hold with strategy replay,
// naming the privilege missing: CAP_NET_RAW, or CAP_NET_ADMIN where the
// kernel refuses a socket filter without it (kernel.unprivileged_bpf_disabled).
func skipWithoutReplay(t *testing.T) {
	t.Helper()
	_, err := listener.Probe()
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	testenv.SkipWithoutPrivilege(t, filterRefused(), "CAP_NET_ADMIN")
}

// TestFilterRefused is a kernel that refuses socket filters without
// CAP_NET_ADMIN (kernel.unprivileged_bpf_disabled), as in a container with
// Docker's default capabilities: strategy auto falls back to retransmit and
// says what is missing, replay fails with the reason, and proxies still
// forward; handshake_delay is refused with the reason.
func TestFilterRefused(t *testing.T) {
	_, err := listener.Probe() // the filter check comes after strategy replay's
	testenv.SkipWithoutPrivilege(t, err, "CAP_NET_RAW")
	defer func(f func() error) { filterRefused = f }(filterRefused)
	filterRefused = func() error { return os.NewSyscallError("setsockopt", syscall.EPERM) }

	sup, err := probeSupport(listener.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if sup.strategy != listener.Retransmit || sup.perConn == nil || !strings.Contains(sup.perConn.Error(), "CAP_NET_ADMIN") {
		t.Errorf("auto: strategy %v, perConn %v; want retransmit, naming CAP_NET_ADMIN", sup.strategy, sup.perConn)
	}
	if _, err := probeSupport(listener.Replay); err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("replay: err %v, want one naming CAP_NET_ADMIN", err)
	}

	e := newEnv(t, listener.Auto)
	p, err := e.client.CreateProxy("nofilter", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Listen), "still forwarded")
	_, err = p.AddToxic("", "handshake_delay", "", 1, toxiclient.Attributes{"delay": 10})
	if err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("handshake_delay: err %v, want one naming CAP_NET_ADMIN", err)
	}
}
