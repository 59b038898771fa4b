//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/internal/testenv"
)

// TestSIGTERM runs the binary and sends it SIGTERM while an API request is
// half sent and a proxied connection is open, as toxiproxy-server 2.6+
// shuts down: the request under way is still answered, then the proxies
// stop (the connection ends, the port refuses), the log says so, and the
// exit status is 0.
func TestSIGTERM(t *testing.T) {
	testenv.SkipIfShort(t, "builds the binary (about 2 s; 0.1 s to run it once built)")
	up := echoUpstream(t)
	cmd := exec.Command(testenv.BuildBinary(t, "."), "-host", "127.0.0.1", "-port", "0", "--log-format", "json")
	api, logs, ended := startBinary(t, cmd)
	p, err := toxiclient.NewClient(api).CreateProxy("echo", "127.0.0.1:0", up)
	if err != nil {
		t.Fatal(err)
	}
	proxied, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer proxied.Close()
	// Half a request: headers and part of the body.
	body := `{"name":"late","listen":"127.0.0.1:0","upstream":"` + up + `"}`
	req, err := net.Dial("tcp", api)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	// The server answers 100 Continue when the handler starts reading the
	// body: from then on the request is under way.
	fmt.Fprintf(req, "POST /proxies HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", api, len(body))
	req.SetReadDeadline(time.Now().Add(10 * time.Second))
	answers := bufio.NewReader(req)
	if line, err := answers.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("POST with Expect: 100-continue: %q, %v", line, err)
	}
	answers.ReadString('\n') // the blank line after the interim answer
	io.WriteString(req, body[:10])

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Wait until the server has begun shutting down, then finish the request.
	testenv.WaitFor(t, 10*time.Second, "the shutdown to start after SIGTERM", func() bool {
		return strings.Contains(logs.String(), `"shutdown started"`)
	})
	io.WriteString(req, body[10:])
	status, err := answers.ReadString('\n')
	if err != nil || !strings.Contains(status, "201") {
		t.Errorf("the request under way at SIGTERM: %q, %v; want 201 Created", status, err)
	}
	proxied.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := proxied.Read(make([]byte, 1)); err == nil {
		t.Errorf("the proxied connection still reads after shutdown (%d bytes)", n)
	}
	<-ended
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v, want status 0\n%s", err, logs)
	}
	if _, err := net.DialTimeout("tcp", p.Listen, time.Second); err == nil {
		t.Error("the proxy still listens after shutdown")
	}
	for _, want := range []string{`"shutdown started"`, `"proxy stopped"`, `"shutdown finished"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs)
		}
	}
}
