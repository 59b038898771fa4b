package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// knobsFile is added to cmd/happyeyeballs-server for the lever rows only,
// through go build -overlay: it sets the library's internal knobs from the
// environment before any listener opens, so that one lever at a time can be
// turned on the real binary. The rows of the server as shipped use the
// plain build.
const knobsFile = `package main

import (
	"os"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/internal/tune"
)

// Added by the benchmark's build for its lever rows: the knobs from the
// environment.
func init() {
	if os.Getenv("SYNHOLD_BENCH_REALTIME") == "off" {
		releaseclock.RealTime = false
	}
	if d, err := time.ParseDuration(os.Getenv("SYNHOLD_BENCH_SPIN")); err == nil {
		releaseclock.Spin = d
	}
	if os.Getenv("SYNHOLD_BENCH_WARM") == "off" {
		tune.WarmRelease = false
	}
	if os.Getenv("SYNHOLD_BENCH_EARLY") == "off" {
		tune.EarlyStart = false
	}
	if d, err := time.ParseDuration(os.Getenv("SYNHOLD_BENCH_ENGINE_LINGER")); err == nil {
		tune.EngineLinger = d
	}
}
`

// serverPkg is the server's import path.
const serverPkg = "github.com/synhold/synhold/cmd/happyeyeballs-server"

// buildKnobServer builds the server with knobsFile added, into dir.
func buildKnobServer(dir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building happyeyeballs-server needs the go command: %w", err)
	}
	out, err := exec.Command(goCmd, "list", "-f", "{{.Dir}}", serverPkg).Output()
	if err != nil {
		return "", fmt.Errorf("go list %s: %w", serverPkg, err)
	}
	src := filepath.Join(dir, "zz_benchknobs.go")
	if err := os.WriteFile(src, []byte(knobsFile), 0o644); err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(strings.TrimSpace(string(out)), "zz_benchknobs.go"): src},
	})
	if err != nil {
		return "", err
	}
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		return "", err
	}
	return goBuild(dir, "happyeyeballs-server-knobs", serverPkg, "-overlay", ov)
}

// leverCases are the lever rows: the server with one lever turned off (or
// changed) against the server as shipped, on the load where it matters.
func leverCases() []usedCase {
	return []usedCase{
		{name: "lever/no-fifo/idle", label: "SCHED_OTHER clock thread, machine as it is", knobs: true,
			env: []string{"SYNHOLD_BENCH_REALTIME=off"}, note: "releaseclock.RealTime off"},
		{name: "lever/no-fifo/busy4", label: "SCHED_OTHER clock thread, 4 busy processes", hogs: 4, knobs: true,
			env: []string{"SYNHOLD_BENCH_REALTIME=off"}, note: "releaseclock.RealTime off"},
		{name: "lever/engine-closed/idle", label: "engine closed with its last listener, machine as it is", knobs: true,
			env: []string{"SYNHOLD_BENCH_ENGINE_LINGER=0s"}, note: "tune.EngineLinger 0"},
		{name: "lever/no-early/idle", label: "no early start, machine as it is", knobs: true,
			env: []string{"SYNHOLD_BENCH_EARLY=off"}, note: "tune.EarlyStart off"},
		{name: "lever/no-warm/idle", label: "release path not warmed, machine as it is", knobs: true,
			env: []string{"SYNHOLD_BENCH_WARM=off"}, note: "tune.WarmRelease off"},
		{name: "lever/neither/idle", label: "neither warmed nor started early, machine as it is", knobs: true,
			env: []string{"SYNHOLD_BENCH_WARM=off", "SYNHOLD_BENCH_EARLY=off"}, note: "tune.WarmRelease and tune.EarlyStart off"},
		{name: "lever/no-spares/idle", label: "no pairs bound ahead of requests, machine as it is",
			serverArgs: []string{"--spares", "0"}, note: "--spares 0"},
		{name: "lever/spin-200us/idle", label: "spin 200 µs (the default before), machine as it is", knobs: true,
			env: []string{"SYNHOLD_BENCH_SPIN=200us"}, note: "releaseclock.Spin 200 µs"},
		{name: "lever/spin-200us/busy4", label: "spin 200 µs (the default before), 4 busy processes", hogs: 4, knobs: true,
			env: []string{"SYNHOLD_BENCH_SPIN=200us"}, note: "releaseclock.Spin 200 µs"},
		{name: "lever/gogc-100/busy4", label: "GOGC=100, 4 busy processes", hogs: 4,
			env: []string{"GOGC=100"}, note: "the server's GOGC 400 off"},
	}
}
