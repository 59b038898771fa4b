package proxybench

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// apiServer is one toxiproxy-API server process.
type apiServer struct {
	bin  string
	via  string // "handshake-proxy" or "toxiproxy X.Y.Z"
	api  *toxiclient.Client
	pid  int
	stop func()
}

// startAPI runs a toxiproxy-API server binary on a free loopback port and
// waits until it answers.
func startAPI(bin string) (*apiServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	url := "http://127.0.0.1:" + port
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url + "/version")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not answer on %s: %v", filepath.Base(bin), url, err)
		}
	}
	return &apiServer{bin: bin, api: toxiclient.NewClient(url), pid: cmd.Process.Pid, stop: stop}, nil
}
