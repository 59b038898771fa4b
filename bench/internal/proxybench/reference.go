package proxybench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// refVia names the reference proxy's row.
const refVia = "reference: minimal Go splice proxy"

// refProxySource is the reference proxy: the least a Go proxy can do per
// connection (accept, dial, one goroutine per direction, (*net.TCPConn).ReadFrom,
// which splices), with no API and no toxic: the floor handshake-proxy's
// fast path is measured against. It listens on 127.0.0.1 for each upstream
// given and prints the listen addresses, one a line.
const refProxySource = `package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	for _, up := range os.Args[1:] {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr())
		go serve(ln, up)
	}
	select {}
}

func serve(ln net.Listener, up string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			u, err := net.Dial("tcp", up)
			if err != nil {
				c.Close()
				return
			}
			go func() { u.(*net.TCPConn).ReadFrom(c); u.Close() }()
			c.(*net.TCPConn).ReadFrom(u)
			c.Close()
		}()
	}
}
`

// refProxy is the reference proxy's process and its two listen addresses.
type refProxy struct {
	cmd        *exec.Cmd
	bin        string
	echo, sink string
}

// startRefProxy builds and starts the reference proxy in front of the echo
// and sink upstreams.
func startRefProxy(dir, echo, sink string) (*refProxy, error) {
	src := filepath.Join(dir, "refproxy")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	if err := errors.Join(
		os.WriteFile(filepath.Join(src, "main.go"), []byte(refProxySource), 0o644),
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module refproxy\n\ngo 1.22\n"), 0o644)); err != nil {
		return nil, err
	}
	build := exec.Command("go", "build", "-o", "refproxy", ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the reference proxy: %w\n%s", err, out)
	}
	return runRefProxy(filepath.Join(src, "refproxy"), echo, sink)
}

// runRefProxy starts the reference proxy binary bin.
func runRefProxy(bin, echo, sink string) (*refProxy, error) {
	cmd := exec.Command(bin, echo, sink)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &refProxy{cmd: cmd, bin: bin}
	sc := bufio.NewScanner(out)
	for _, addr := range []*string{&r.echo, &r.sink} {
		if !sc.Scan() {
			r.stop()
			return nil, fmt.Errorf("the reference proxy printed no listen address: %v", sc.Err())
		}
		*addr = sc.Text()
	}
	return r, nil
}

func (r *refProxy) pid() int {
	if r == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *refProxy) stop() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}
