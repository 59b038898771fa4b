package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/synhold/synhold/bench/internal/stats"
)

// userHZ is the unit of utime and stime in /proc/PID/task/TID/stat
// (USER_HZ, 100 on every Linux architecture Go supports).
const userHZ = 100

// cpuSample is the CPU time each thread of a process had used at one moment:
// its clock threads' if it has any, otherwise all of its threads'.
type cpuSample struct {
	byTID map[int]time.Duration
	// whole: no thread was named clockThreadName, so byTID holds every
	// thread of the process.
	whole bool
	// fine: the times came from schedstat (nanoseconds) rather than stat
	// (1/userHZ s).
	fine bool
}

// sampleClockCPU reads the CPU time of process pid's threads named
// clockThreadName, or of all its threads when none is: schedstat's run
// time in nanoseconds where the kernel keeps it, utime+stime of stat
// otherwise.
func sampleClockCPU(pid int) (cpuSample, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return cpuSample{}, err
	}
	all := map[int]time.Duration{}
	clock := map[int]time.Duration{}
	fine := true
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		d, ok, err := threadCPU(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return cpuSample{}, err
		}
		fine = fine && ok
		all[tid] = d
		if string(bytes.TrimSpace(comm)) == clockThreadName {
			clock[tid] = d
		}
	}
	if len(clock) > 0 {
		return cpuSample{byTID: clock, fine: fine}, nil
	}
	return cpuSample{byTID: all, whole: true, fine: fine}, nil
}

// threadCPU reads one thread's CPU time from its /proc directory; fine
// says it came from schedstat.
func threadCPU(dir string) (d time.Duration, fine bool, err error) {
	if b, err := os.ReadFile(filepath.Join(dir, "schedstat")); err == nil {
		d, err := parseSchedstat(b)
		return d, true, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, false, err
	}
	d, err = parseStatCPU(b)
	return d, false, err
}

// parseSchedstat reads the time spent on a CPU, the first of the three
// fields of /proc/PID/task/TID/schedstat, in nanoseconds.
func parseSchedstat(b []byte) (time.Duration, error) {
	f := bytes.Fields(b)
	if len(f) < 1 {
		return 0, fmt.Errorf("schedstat %q: no fields", b)
	}
	ns, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("schedstat %q: want a count of nanoseconds first", b)
	}
	return time.Duration(ns), nil
}

// parseStatCPU reads utime+stime (fields 14 and 15) of a /proc stat line.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so the fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name in parentheses", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %q: %d fields after the command name, want at least 13", b, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		t, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || t < 0 {
			return 0, fmt.Errorf("stat %q: utime and stime: want counts of ticks, got %q", b, s)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuSince is the CPU the threads of after used since before; a thread
// not in before started in between and counts whole. A thread that ended
// in between is lost: the figure is then low.
func cpuSince(before, after cpuSample) time.Duration {
	var d time.Duration
	for tid, t := range after.byTID {
		d += t - before.byTID[tid]
	}
	return d
}

// cpuUse is the CPU per release between two samples of one process.
func cpuUse(before, after cpuSample, releases int) CPUUse {
	u := CPUUse{Thread: clockThreadName, Releases: releases, CPUUS: stats.US(cpuSince(before, after))}
	if after.whole {
		u.Thread = "whole process (no thread named " + clockThreadName + ")"
	}
	if !after.fine || !before.fine {
		u.Thread += ", stat ticks of 10 ms"
	}
	if releases > 0 {
		u.PerReleaseUS = stats.Round3(u.CPUUS / float64(releases))
	}
	return u
}
