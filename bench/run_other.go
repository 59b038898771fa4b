//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

// run fails: the measurements need AF_PACKET capture, timerfd and
// /proc, which only Linux has.
func run([]part, Options) error {
	return fmt.Errorf("the benchmark needs Linux (AF_PACKET, timerfd, /proc); this is %s", runtime.GOOS)
}
