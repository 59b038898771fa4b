package proxy

import (
	"os"
	"strings"
	"syscall"
	"testing"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/listener"
)

// TestFilterRefused is a kernel that refuses socket filters without
// CAP_NET_ADMIN (kernel.unprivileged_bpf_disabled), as in a container with
// Docker's default capabilities: strategy auto falls back to retransmit and
// says what is missing, replay fails with the reason, and proxies still
// forward; handshake_delay is refused with the reason.
func TestFilterRefused(t *testing.T) {
	if s, err := listener.Probe(); s != listener.Replay {
		t.Skipf("needs CAP_NET_RAW (strategy replay) to reach the filter check: %v", err)
	}
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
