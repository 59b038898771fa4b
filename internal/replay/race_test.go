//go:build race

package replay

// raceDetector says that the race detector is on: its sync.Pool drops
// some of what is Put, so a Send may build a sender.
const raceDetector = true
