package main

import (
	"github.com/synhold/synhold/internal/tune"
)

// leverCases are the lever rows: the server with one lever turned off (or
// changed) against the server as shipped, on the load where it matters.
func leverCases() []usedCase {
	return []usedCase{
		{name: "lever/no-fifo/idle", label: "SCHED_OTHER clock thread, machine as it is",
			env: []string{tune.EnvRealTime + "=off"}, note: tune.EnvRealTime + "=off"},
		{name: "lever/no-fifo/busy4", label: "SCHED_OTHER clock thread, 4 busy processes", hogs: 4,
			env: []string{tune.EnvRealTime + "=off"}, note: tune.EnvRealTime + "=off"},
		{name: "lever/engine-closed/idle", label: "engine closed with its last listener, machine as it is",
			env: []string{tune.EnvLinger + "=0s"}, note: tune.EnvLinger + "=0s"},
		{name: "lever/no-early/idle", label: "no early start, machine as it is",
			env: []string{tune.EnvEarly + "=off"}, note: tune.EnvEarly + "=off"},
		{name: "lever/no-warm/idle", label: "release path not warmed, machine as it is",
			env: []string{tune.EnvWarm + "=off"}, note: tune.EnvWarm + "=off"},
		{name: "lever/neither/idle", label: "neither warmed nor started early, machine as it is",
			env: []string{tune.EnvWarm + "=off", tune.EnvEarly + "=off"}, note: tune.EnvWarm + "=off " + tune.EnvEarly + "=off"},
		{name: "lever/no-spares/idle", label: "no pairs bound ahead of requests, machine as it is",
			serverArgs: []string{"--spares", "0"}, note: "--spares 0"},
		{name: "lever/spin-200us/idle", label: "spin 200 µs (the default before), machine as it is",
			env: []string{tune.EnvSpin + "=200us"}, note: tune.EnvSpin + "=200us"},
		{name: "lever/spin-200us/busy4", label: "spin 200 µs (the default before), 4 busy processes", hogs: 4,
			env: []string{tune.EnvSpin + "=200us"}, note: tune.EnvSpin + "=200us"},
		{name: "lever/gogc-100/busy4", label: "GOGC=100, 4 busy processes", hogs: 4,
			env: []string{"GOGC=100"}, note: "the server's GOGC 400 off"},
	}
}

// serverPkg is the server's import path.
const serverPkg = "github.com/synhold/synhold/cmd/happyeyeballs-server"
