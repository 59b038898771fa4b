// Package proc runs and reads the processes the bench starts beside itself
// (the server under test, tcpdump, proxies, clients): a child whose stderr
// is kept and which is started once a line says it is ready, the go
// command's builds, and a process's memory from /proc.
package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Child is a process the benchmark runs beside itself (the server under
// test, the observer), its stderr kept.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once stderr is drained

	mu  sync.Mutex
	buf bytes.Buffer
}

// Start starts cmd and returns once ready holds for a line of its
// stderr, or fails (killing it) if it exits or limit passes first. ready is
// called on the reading goroutine, one line at a time, until it holds.
func Start(cmd *exec.Cmd, limit time.Duration, ready func(line []byte) bool) (*Child, error) {
	errp, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	c := &Child{cmd: cmd, done: make(chan struct{})}
	up := make(chan struct{})
	go func() {
		defer close(c.done)
		br := bufio.NewReader(errp)
		waiting := true
		for {
			line, err := br.ReadBytes('\n')
			c.mu.Lock()
			c.buf.Write(line)
			c.mu.Unlock()
			if waiting && ready(line) {
				close(up)
				waiting = false
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-up:
		return c, nil
	case <-c.done:
	case <-time.After(limit):
	}
	_ = cmd.Process.Kill()
	<-c.done
	_ = cmd.Wait()
	return nil, fmt.Errorf("%s did not get ready: %s", cmd.Path, c.Tail(8))
}

// Output is everything the child wrote on stderr so far.
func (c *Child) Output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

// Tail is the child's last n lines of stderr, for an error message.
func (c *Child) Tail(n int) string {
	lines := strings.Split(strings.TrimSpace(string(c.Output())), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Stop sends sig and waits up to limit for the child to exit (then kills
// it); it returns how it exited.
func (c *Child) Stop(sig os.Signal, limit time.Duration) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-time.After(limit):
		_ = c.cmd.Process.Kill()
		<-c.done
		_ = c.cmd.Wait()
		return fmt.Errorf("%s did not exit within %v of %v", c.cmd.Path, limit, sig)
	}
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w", c.cmd.Path, err)
	}
	return nil
}

// Pid is the child's process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }
