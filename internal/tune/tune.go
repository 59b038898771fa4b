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
