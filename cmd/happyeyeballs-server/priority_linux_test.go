package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/synhold/synhold/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestSetNice(t *testing.T) {
	testenv.SkipWithoutPrivilege(t, setNice(-3), "CAP_SYS_NICE")
	defer setNice(0)
	nices := procNices(t, os.Getpid())
	for tid, n := range nices {
		if n != -3 {
			t.Errorf("thread %s: nice %d, want -3", tid, n)
		}
	}
	if len(nices) < 2 {
		t.Errorf("%d threads seen", len(nices))
	}
}

// TestNiceRefused checks that a refused renice is reported with its cause
// and the server serves anyway.
func TestNiceRefused(t *testing.T) {
	old := setpriority
	setpriority = func(which, who, prio int) error { return unix.EPERM }
	defer func() { setpriority = old }()
	err := setNice(-10)
	if !errors.Is(err, os.ErrPermission) || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "CAP_SYS_NICE") {
		t.Errorf("setNice with EPERM: %v, want os.ErrPermission naming CAP_SYS_NICE", err)
	}
	s := startServer(t, "--strategy", "delayed-listen", "--nice", "-10")
	line := startLine(t, s.Stderr.String())
	if line["nice"] != float64(0) || !strings.Contains(line["nice_why"].(string), "CAP_SYS_NICE") {
		t.Errorf("start-up line says nice %v (%v), want 0 and why", line["nice"], line["nice_why"])
	}
	setpriority = func(which, who, prio int) error { return unix.EINVAL }
	if err := setNice(-10); !errors.Is(err, unix.EINVAL) || errors.Is(err, os.ErrPermission) {
		t.Errorf("setNice with EINVAL: %v", err)
	}
}
