package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lacksNetRaw reports whether CAP_NET_RAW is missing from the process's
// effective capabilities, which strategy Replay needs for its capture.
func lacksNetRaw() (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("capget: %w", os.NewSyscallError("capget", err))
	}
	return data[0].Effective&(1<<unix.CAP_NET_RAW) == 0, nil
}
