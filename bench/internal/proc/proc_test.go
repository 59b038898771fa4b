package proc

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
)

func TestChildStartsWhenReadyAndStops(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.SkipWithoutFeature(t, "sh(1)", err)
	}
	for _, tc := range []struct {
		name    string
		script  string
		ready   bool   // Start returns the child
		inError string // in Start's error, when not ready
	}{
		{"ready, then runs", "echo starting >&2; echo listening on lo >&2; exec sleep 30", true, ""},
		{"exits first", "echo bad flag >&2; exit 3", false, "bad flag"},
		{"never ready", "echo starting >&2; exec sleep 30", false, "did not get ready"},
	} {
		c, err := Start(exec.Command(sh, "-c", tc.script), 2*time.Second, func(line []byte) bool {
			return strings.Contains(string(line), "listening on")
		})
		if !tc.ready {
			if err == nil || !strings.Contains(err.Error(), tc.inError) {
				t.Errorf("%s: Start = %v, want an error with %q", tc.name, err, tc.inError)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Pid() <= 0 || !strings.Contains(c.Tail(2), "starting\nlistening on lo") {
			t.Errorf("%s: pid %d, tail %q; want the child's two lines", tc.name, c.Pid(), c.Tail(2))
		}
		if err := c.Stop(syscall.SIGTERM, 5*time.Second); err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("%s: Stop = %v, want the signal it died of", tc.name, err)
		}
	}
}

func TestMemoryOfThisProcessAndAnother(t *testing.T) {
	rss, hwm, err := Memory(0)
	if err != nil {
		testenv.SkipWithoutFeature(t, "/proc/self/status", err)
	}
	if rss == 0 || hwm < rss {
		t.Errorf("Memory(0) = rss %d, hwm %d; want some RSS, its high-water mark at least as much", rss, hwm)
	}
	if _, _, err := Memory(-1); err == nil {
		t.Error("Memory of no process did not fail")
	}
}
