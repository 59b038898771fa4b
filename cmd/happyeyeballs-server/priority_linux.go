package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setpriority is the seam through which threads are reniced; a test
// replaces it to simulate a missing CAP_SYS_NICE.
var setpriority = unix.Setpriority

// setNice sets the nice value of every thread of the process to n, so that
// on a busy machine the control replies and the accepts are not queued
// behind other programs (Linux keeps a nice value per thread; threads
// started later inherit their creator's). A lower value than the current
// one needs CAP_SYS_NICE; without it the error wraps os.ErrPermission and
// nothing changed.
func setNice(n int) error {
	done := make(map[int]bool)
	// Again until a pass finds no thread it has not reniced: a thread
	// started meanwhile by one not yet reniced inherited the old value.
	// Under load the runtime can start a few in a row; 4 passes were
	// sometimes not enough, and a thread was left at the old value.
	for range 64 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		fresh := false
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh = true
			err = setpriority(unix.PRIO_PROCESS, tid, n)
			switch {
			case errors.Is(err, unix.ESRCH): // it ended
			case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
				return fmt.Errorf("nice %d needs CAP_SYS_NICE (run as root): %w", n, os.NewSyscallError("setpriority", err))
			case err != nil:
				return fmt.Errorf("nice %d: %w", n, os.NewSyscallError("setpriority", err))
			}
			done[tid] = true
		}
		if !fresh {
			return nil
		}
	}
	return fmt.Errorf("nice %d: threads kept starting through 64 passes; some may have the old value", n)
}
