// Package tune is the tuning of the listener's machinery: the release
// clock's configuration and the capture engine's. A program sets it once,
// before its first listener opens (Set), from its flags or environment
// (FromEnv); the listener reads it when it opens a listener and passes it
// down to the engine and the clock it starts. The benchmarks turn their
// levers through it. Only this module's packages may import it.
package tune

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
)

// Config is the tuning of the listener's machinery.
type Config struct {
	// Clock is the release clock's configuration, for the process's clock
	// (started by the first listener that needs it).
	Clock releaseclock.Config
	// EngineLinger is how long a network namespace's capture engine (the
	// AF_PACKET socket and raw sockets of strategy Replay) stays open after
	// its last listener closed, so that listeners opened one after another
	// share one: opening one costs a capture socket, and closing one waits
	// ~15 ms for the kernel. 0 closes it with its last listener.
	EngineLinger time.Duration
	// WarmRelease makes a listener of strategy Replay warm the kernel's
	// path of its release before the instant: the release clock wakes for
	// it Clock.PrepareAhead earlier than otherwise, and the listener sends
	// a SYN of the engine's own through the same raw socket to a listener
	// of its own (answered by a RST), then again Clock.Rewarm before the
	// release starts. After an idle spell that path is cold: 45-175 µs from
	// the replayed SYN to the SYN-ACK measured as used, 28-55 µs warmed.
	// Releases due together share one warm-up.
	WarmRelease bool
	// EarlyStart makes a listener of strategy Replay start its release a
	// lead before the instant, the lead learned from its network
	// namespace's own releases (the smallest recent latency from the start
	// of a release to its SYN-ACK, less a margin), so that the SYN-ACK
	// leaves at the instant rather than after it. Refusals are still sent
	// at the instant.
	EarlyStart bool
}

// Default is the machinery as shipped.
func Default() Config {
	return Config{Clock: releaseclock.DefaultConfig(), EngineLinger: 5 * time.Second, WarmRelease: true, EarlyStart: true}
}

var (
	mu      sync.Mutex
	current = Default()
)

// Set makes c the tuning of listeners opened from now on, and returns the
// tuning it replaces. A clock or engine already open keeps its own.
func Set(c Config) (old Config) {
	mu.Lock()
	defer mu.Unlock()
	old, current = current, c
	return old
}

// Get returns the tuning listeners are opened with.
func Get() Config {
	mu.Lock()
	defer mu.Unlock()
	return current
}

// The environment variables FromEnv reads, each a lever of Config.
const (
	EnvSpin     = "SYNHOLD_SPIN"          // Clock.Spin, a duration ("1ms", "200us", "0")
	EnvRealTime = "SYNHOLD_REALTIME"      // Clock.RealTime, on or off
	EnvWarm     = "SYNHOLD_WARM"          // WarmRelease, on or off
	EnvEarly    = "SYNHOLD_EARLY"         // EarlyStart, on or off
	EnvLinger   = "SYNHOLD_ENGINE_LINGER" // EngineLinger, a duration
)

// FromEnv returns base with the levers that getenv (os.Getenv) sets
// changed, or an error naming the variable that does not parse and what it
// takes.
func FromEnv(base Config, getenv func(string) string) (Config, error) {
	c := base
	dur := func(name string, d *time.Duration) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 {
			return fmt.Errorf("%s=%q: want a duration such as 1ms or 200us", name, v)
		}
		*d = x
		return nil
	}
	onOff := func(name string, b *bool) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		switch x, err := strconv.ParseBool(strings.ToLower(v)); {
		case err == nil:
			*b = x
		case strings.EqualFold(v, "on"):
			*b = true
		case strings.EqualFold(v, "off"):
			*b = false
		default:
			return fmt.Errorf("%s=%q: want on or off", name, v)
		}
		return nil
	}
	for _, err := range []error{
		dur(EnvSpin, &c.Clock.Spin), onOff(EnvRealTime, &c.Clock.RealTime),
		onOff(EnvWarm, &c.WarmRelease), onOff(EnvEarly, &c.EarlyStart), dur(EnvLinger, &c.EngineLinger),
	} {
		if err != nil {
			return base, err
		}
	}
	return c, nil
}

// closeIdle is the listener's closeIdleEngines, registered by package
// listener (which imports this one, so it cannot be called directly).
var closeIdle atomic.Pointer[func()]

// RegisterCloseIdle is how package listener offers CloseIdleEngines.
func RegisterCloseIdle(f func()) { closeIdle.Store(&f) }

// CloseIdleEngines closes, now, the capture engines that no listener uses,
// which otherwise outlive their last listener by EngineLinger. A program
// that counts its descriptors (the benchmarks) calls it after closing its
// listeners. Without package listener linked in it does nothing.
func CloseIdleEngines() {
	if f := closeIdle.Load(); f != nil {
		(*f)()
	}
}
