package tune

import (
	"reflect"
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
