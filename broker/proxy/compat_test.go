package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synhold/synhold/listener"
)

var (
	toxiproxyOnce sync.Once
	toxiproxyBin  string
	toxiproxyErr  error
)

// buildToxiproxy builds toxiproxy-server from the module this one requires,
// once per test binary.
func buildToxiproxy(t *testing.T) string {
	t.Helper()
	toxiproxyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "toxiproxy-")
		if err != nil {
			toxiproxyErr = err
			return
		}
		toxiproxyBin = filepath.Join(dir, "toxiproxy-server")
		out, err := exec.Command("go", "build", "-o", toxiproxyBin, "github.com/Shopify/toxiproxy/v2/cmd/server").CombinedOutput()
		if err != nil {
			toxiproxyErr = err
			toxiproxyBin = string(out)
		}
	})
	if toxiproxyErr != nil {
		t.Fatalf("building toxiproxy-server: %v\n%s", toxiproxyErr, toxiproxyBin)
	}
	return toxiproxyBin
}

// freePort is a loopback port nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startToxiproxy runs toxiproxy-server on loopback and returns its API URL.
func startToxiproxy(t *testing.T) string {
	t.Helper()
	bin := buildToxiproxy(t)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-host", "127.0.0.1", "-port", port)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	url := "http://127.0.0.1:" + port
	eventually(t, 10*time.Second, "toxiproxy-server to answer", func() bool {
		resp, err := http.Get(url + "/version")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return url
}

// TestCompatWithToxiproxy sends the same requests to toxiproxy-server itself
// and to a Server, and compares status, Content-Type and body (addresses
// masked).
func TestCompatWithToxiproxy(t *testing.T) {
	theirs := startToxiproxy(t)
	e := newEnv(t, listener.Auto)
	ours := e.api.URL
	up := echoServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	reqs := []struct{ method, path, body, ua string }{
		{"GET", "/proxies", "", ""},
		{"POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"` + up + `"}`, ""},
		{"POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"` + up + `"}`, ""},
		{"POST", "/proxies", `{"name":"off","listen":"127.0.0.1:0","upstream":"` + up + `","enabled":false}`, ""},
		{"POST", "/proxies", `{"name":`, ""},
		{"POST", "/proxies", `{"name":1}`, ""},
		{"POST", "/proxies", `{"upstream":"x:1"}`, ""},
		{"POST", "/proxies", `{"name":"q"}`, ""},
		{"POST", "/proxies", `{"name":"busy","listen":"` + busy.Addr().String() + `","upstream":"x:1"}`, ""},
		{"GET", "/proxies/p", "", ""},
		{"GET", "/proxies/nope", "", ""},
		{"GET", "/proxies", "", ""},
		{"GET", "/proxies/p/toxics", "", ""},
		{"POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":100,"jitter":5}}`, ""},
		{"POST", "/proxies/p/toxics", `{"type":"latency"}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"bw","type":"bandwidth","stream":"upstream","toxicity":0.5,"attributes":{"rate":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"sc","type":"slow_close","attributes":{"delay":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"to","type":"timeout","stream":"upstream","attributes":{"timeout":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"rp","type":"reset_peer","attributes":{"timeout":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"sl","type":"slicer","attributes":{"average_size":10,"size_variation":2,"delay":1}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"ld","type":"limit_data","attributes":{"bytes":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"no","type":"noop"}`, ""},
		{"POST", "/proxies/p/toxics", `{"type":"nonsense"}`, ""},
		{"POST", "/proxies/p/toxics", `{"type":"latency","stream":"sideways"}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"x","type":"latency","attributes":{"latency":"slow"}}`, ""},
		{"POST", "/proxies/p/toxics", `nope`, ""},
		{"GET", "/proxies/p/toxics", "", ""},
		{"GET", "/proxies/p/toxics/bw", "", ""},
		{"GET", "/proxies/p/toxics/nope", "", ""},
		{"POST", "/proxies/p/toxics/bw", `{"toxicity":0.25,"attributes":{"rate":20}}`, ""},
		{"POST", "/proxies/p/toxics/bw", `{"attributes":{"rate":"x"}}`, ""},
		{"POST", "/proxies/p/toxics/nope", `{}`, ""},
		{"DELETE", "/proxies/p/toxics/sc", "", ""},
		{"DELETE", "/proxies/p/toxics/sc", "", ""},
		{"GET", "/proxies/p", "", ""},
		{"POST", "/proxies/p", `{"enabled":false}`, "toxiproxy-cli"},
		{"GET", "/proxies/p", "", ""},
		{"POST", "/proxies/p", `{"enabled":`, ""},
		{"POST", "/proxies/nope", `{}`, ""},
		{"POST", "/reset", "", ""},
		{"GET", "/proxies", "", ""},
		{"POST", "/populate", `{`, ""},
		{"POST", "/populate", `[{"name":"a"}]`, ""},
		{"POST", "/populate", `[{"upstream":"x:1"}]`, ""},
		{"POST", "/populate", `[]`, ""},
		{"POST", "/populate", `[{"name":"a","listen":"127.0.0.1:0","upstream":"` + up + `"},{"name":"b","listen":"127.0.0.1:0","upstream":"` + up + `","enabled":false}]`, ""},
		{"POST", "/populate", `[{"name":"c","listen":"` + busy.Addr().String() + `","upstream":"x:1"}]`, ""},
		{"GET", "/proxies", "", "Mozilla/5.0"},
		{"PUT", "/proxies", "", ""},
		{"GET", "/nothing", "", ""},
		{"DELETE", "/proxies/b", "", ""},
		{"DELETE", "/proxies/b", "", ""},
		{"GET", "/proxies/b", "", ""},
	}
	addr := regexp.MustCompile(`(127\.0\.0\.1|\[::\]):\d+`)
	mask := func(s string) string { return addr.ReplaceAllString(s, "ADDR") }
	send := func(base, method, path, body, ua string) (int, string, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ua != "" {
			req.Header.Set("User-Agent", ua)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), mask(string(b))
	}
	for _, r := range reqs {
		tc, tt, tb := send(theirs, r.method, r.path, r.body, r.ua)
		oc, ot, ob := send(ours, r.method, r.path, r.body, r.ua)
		what := r.method + " " + r.path + " " + r.body
		if tc != oc || tt != ot {
			t.Errorf("%s:\n toxiproxy %d %q %s\n ours      %d %q %s", what, tc, tt, tb, oc, ot, ob)
			continue
		}
		if strings.Contains(r.body, busy.Addr().String()) {
			continue // the listen error's wording is the listener's
		}
		if !sameJSON(tb, ob) {
			t.Errorf("%s: bodies differ\n toxiproxy %s\n ours      %s", what, tb, ob)
		}
	}
}

// sameJSON compares two bodies as JSON if both parse (maps are unordered),
// as text otherwise.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(normalizeToxics(x), normalizeToxics(y))
}

// normalizeToxics leaves JSON as it is; hook for order-insensitive lists.
func normalizeToxics(v any) any { return v }
