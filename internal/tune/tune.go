// Package tune holds the knobs of the listener's machinery that only this
// module's packages (the listener, its tests and the benchmarks) may turn.
// The release clock's own knobs are in package releaseclock.
package tune

import "time"

// EngineLinger is how long a network namespace's capture engine (the
// AF_PACKET socket and raw sockets of strategy Replay) stays open after its
// last listener closed, so that listeners opened one after another share
// one: opening one costs a capture socket, and closing one waits ~15 ms for
// the kernel. 0 closes it with its last listener.
var EngineLinger = 5 * time.Second

// WarmRelease makes a listener of strategy Replay warm the kernel's path of
// its release before the instant: the release clock wakes for it
// releaseclock.PrepareAhead earlier than otherwise, and the listener sends a
// SYN of the engine's own through the same raw socket to a listener of its
// own (answered by a RST), then again 100 µs before the release starts. After
// an idle spell that path is cold: 45-175 µs from the replayed SYN to the
// SYN-ACK measured as used, 28-55 µs warmed. It costs about a millisecond
// of one core per release.
var WarmRelease = true

// EarlyStart makes a listener of strategy Replay start its release a lead
// before the instant, the lead learned from its network namespace's own
// releases (the smallest recent latency from the start of a release to its
// SYN-ACK, less a margin), so that the SYN-ACK leaves at the instant rather
// than after it. Refusals are still sent at the instant.
var EarlyStart = true
