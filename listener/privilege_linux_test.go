package listener

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// withoutNetRaw runs fn on a locked OS thread whose effective capabilities
// lack CAP_NET_RAW. Capabilities are per thread on Linux, so the rest of
// the process keeps its own.
func withoutNetRaw(t *testing.T, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var saved, dropped [2]unix.CapUserData
	if err := unix.Capget(&hdr, &saved[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	dropped = saved
	dropped[0].Effective &^= 1 << unix.CAP_NET_RAW
	if err := unix.Capset(&hdr, &dropped[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	fn()
	if err := unix.Capset(&hdr, &saved[0]); err == nil {
		runtime.UnlockOSThread() // else the thread ends with the goroutine
	}
}

// TestRealMissingPrivilege opens the engine, probes and listens without
// CAP_NET_RAW for real, not through a seam.
func TestRealMissingPrivilege(t *testing.T) {
	withoutNetRaw(t, func() {
		if _, err := newEngine(); !errors.Is(err, os.ErrPermission) {
			t.Errorf("newEngine() error %v, want a permission error", err)
		}
		if s, err := Probe(); s != Retransmit || !errors.Is(err, os.ErrPermission) {
			t.Errorf("Probe() = %v, %v; want retransmit and a permission error", s, err)
		}
		h, err := Listen("tcp4", "127.0.0.1:0", Config{})
		if err != nil {
			t.Fatalf("Listen(Auto) without CAP_NET_RAW: %v", err)
		}
		defer h.Close()
		if h.Strategy() != Retransmit {
			t.Errorf("Auto picked %v without CAP_NET_RAW, want retransmit", h.Strategy())
		}
	})
}
