package main

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// hogs are busy-looping processes the benchmark starts to load the
// machine, as other jobs on a CI host would.
type hogs struct {
	quit, done chan struct{}
	err        error
}

// startHogs starts n busy-looping shells. They are started, and killed, from
// one locked thread that lives until stop: a child's parent-death signal
// follows the thread that forked it, and the runtime ends threads that a
// locked goroutine leaves.
func startHogs(n int) (*hogs, error) {
	h := &hogs{quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(h.done)
		cmds, err := spawnHogs(n)
		ready <- err
		if err != nil {
			return
		}
		<-h.quit
		h.err = reap(cmds)
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return h, nil
}

func spawnHogs(n int) ([]*exec.Cmd, error) {
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			reap(cmds)
			return nil, fmt.Errorf("start a busy process: %w", err)
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

// reap kills the processes it started, by pid, and waits for them.
func reap(cmds []*exec.Cmd) error {
	var errs []error
	for _, c := range cmds {
		if err := c.Process.Kill(); err != nil {
			errs = append(errs, err)
		}
		c.Wait() // killed: its exit status is the signal
	}
	return errors.Join(errs...)
}

// stop kills the busy processes.
func (h *hogs) stop() error {
	close(h.quit)
	<-h.done
	return h.err
}
