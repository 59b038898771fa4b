package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/synhold/synhold/internal/releaseclock"
	"github.com/synhold/synhold/listener"
	"golang.org/x/sys/unix"
)

// describeMachine gathers the machine's description. It takes about half a
// second: it samples the CPU's idle time and the other processes' CPU use.
func describeMachine(nofile Rlimit) Machine {
	m := Machine{
		Kernel:      kernel(),
		CPUModel:    cpuModel(),
		Cores:       runtime.NumCPU(),
		GoVersion:   runtime.Version(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		Date:        time.Now().UTC().Format(time.RFC3339),
		Clocksource: readTrim("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
		LoadAvg:     readTrim("/proc/loadavg"),
		NoFile:      nofile,
		Privilege:   privilege(),
	}
	m.ClockThread = clockScheduling()
	m.IdlePct, m.Hogs = sampleCPU(500 * time.Millisecond)
	m.TimeWaitStart = timeWaitCount()
	return m
}

// timeWaitCount counts the TCP sockets in TIME_WAIT, IPv4 and IPv6.
func timeWaitCount() int {
	n := 0
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 3 && f[3] == "06" {
				n++
			}
		}
	}
	return n
}

// kernel is uname's system, release, version and machine.
func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown: " + err.Error()
	}
	return strings.Join([]string{unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]),
		unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:])}, " ")
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// privilege says which strategy Auto picks here, and why not Replay.
func privilege() string {
	s, err := listener.Probe()
	if err != nil {
		return fmt.Sprintf("strategy auto = %v (%v)", s, err)
	}
	return fmt.Sprintf("strategy auto = %v (CAP_NET_RAW)", s)
}

// clockScheduling says how the release clock's thread is scheduled in this
// process, and why not SCHED_FIFO if it asked for it.
func clockScheduling() string {
	p, err := releaseclock.Scheduling()
	if err != nil {
		return fmt.Sprintf("%s (%v)", p, err)
	}
	return p
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// sampleCPU returns the percentage of CPU time idle over d, and the other
// processes that used more than a fifth of a core meanwhile.
func sampleCPU(d time.Duration) (idlePct float64, hogs []string) {
	idle0, total0 := cpuTimes()
	procs0 := procTicks()
	time.Sleep(d)
	idle1, total1 := cpuTimes()
	procs1 := procTicks()
	if total1 > total0 {
		idlePct = math.Round(1000*float64(idle1-idle0)/float64(total1-total0)) / 10
	}
	ticks := d.Seconds() * 100 // USER_HZ
	self := os.Getpid()
	type hog struct {
		pid int
		pct float64
	}
	var hs []hog
	for pid, t1 := range procs1 {
		if pct := 100 * float64(t1-procs0[pid]) / ticks; pid != self && pct > 20 {
			hs = append(hs, hog{pid, pct})
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].pct > hs[j].pct })
	for _, h := range hs {
		hogs = append(hogs, fmt.Sprintf("pid %d `%s` %.0f%%", h.pid, cmdline(h.pid), h.pct))
	}
	return idlePct, hogs
}

// cpuTimes returns the idle and total ticks of /proc/stat's cpu line.
func cpuTimes() (idle, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	for i, f := range strings.Fields(string(line))[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total
}

// procTicks returns utime+stime of every process, by pid.
func procTicks() map[int]uint64 {
	out := make(map[int]uint64)
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		out[pid] = ut + st
	}
	return out
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return "?"
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	s = strings.NewReplacer("|", "/", "`", "'").Replace(s) // it goes in a Markdown table
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}
