//go:build !race

package replay

// raceDetector says that the race detector is on (see race_test.go).
const raceDetector = false
