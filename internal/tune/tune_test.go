package tune

import (
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestFromEnv checks each lever, and that a bad value is an error naming
// its variable that leaves the configuration alone.
func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{"nothing set", nil, func(c Config) bool { return reflect.DeepEqual(c, Default()) }, ""},
		{"spin", map[string]string{EnvSpin: "200us"}, func(c Config) bool { return c.Clock.Spin == 200*time.Microsecond }, ""},
		{"spin off", map[string]string{EnvSpin: "0"}, func(c Config) bool { return c.Clock.Spin == 0 }, ""},
		{"realtime off", map[string]string{EnvRealTime: "off"}, func(c Config) bool { return !c.Clock.RealTime }, ""},
		{"warm off", map[string]string{EnvWarm: "false"}, func(c Config) bool { return !c.WarmRelease && c.EarlyStart }, ""},
		{"early off", map[string]string{EnvEarly: "OFF"}, func(c Config) bool { return !c.EarlyStart && c.WarmRelease }, ""},
		{"linger", map[string]string{EnvLinger: "0s"}, func(c Config) bool { return c.EngineLinger == 0 }, ""},
		{"bad duration", map[string]string{EnvSpin: "fast"}, func(c Config) bool { return reflect.DeepEqual(c, Default()) }, EnvSpin},
		{"negative duration", map[string]string{EnvLinger: "-1s"}, func(c Config) bool { return reflect.DeepEqual(c, Default()) }, EnvLinger},
		{"bad switch", map[string]string{EnvWarm: "maybe"}, func(c Config) bool { return reflect.DeepEqual(c, Default()) }, "want on or off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(Default(), func(k string) string { return tc.env[k] })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("FromEnv: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("FromEnv: %v, want an error with %q", err, tc.wantErr)
			}
			if !tc.check(c) {
				t.Errorf("FromEnv = %+v", c)
			}
		})
	}
}

func TestSetServerRuntime(t *testing.T) {
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs); debug.SetGCPercent(gc) })
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if p, g := SetServerRuntime(getenv); p != procs || g != GCPercent || runtime.GOMAXPROCS(0) != procs {
		t.Errorf("unset environment: GOMAXPROCS %d (said %d), GOGC %d; want %d and %d", runtime.GOMAXPROCS(0), p, g, procs, GCPercent)
	}

	runtime.GOMAXPROCS(procs)
	debug.SetGCPercent(100)
	env["GOGC"] = "100" // the runtime read it at start; only its presence counts here
	if p, g := SetServerRuntime(getenv); p != procs || g != 100 {
		t.Errorf("GOGC set: got %d and %d, want %d and GOGC left at 100", p, g, procs)
	}
}
