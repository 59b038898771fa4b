package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synhold/synhold/internal/testenv"
	"github.com/synhold/synhold/listener"
)

// buildToxiproxy builds toxiproxy-server from the module this one requires
// (v2.12.0), once per test binary (testenv.BuildBinary), with its version
// set as its release builds set it, so that GET /version compares byte for
// byte.
func buildToxiproxy(t *testing.T) string {
	t.Helper()
	return testenv.BuildBinary(t, "github.com/Shopify/toxiproxy/v2/cmd/server",
		"-ldflags=-X github.com/Shopify/toxiproxy/v2.Version="+Version)
}

// startToxiproxy runs toxiproxy-server on loopback, with flags added, and
// returns its API URL.
func startToxiproxy(t *testing.T, flags ...string) string {
	t.Helper()
	bin := buildToxiproxy(t)
	port := strconv.Itoa(testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"-host", "127.0.0.1", "-port", port}, flags...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	url := "http://127.0.0.1:" + port
	testenv.WaitFor(t, 10*time.Second, "toxiproxy-server to answer", func() bool {
		resp, err := http.Get(url + "/version")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return url
}

// compatRequest is one request of the comparison. Its body may name the
// server's own addresses: {{listen:NAME}} is where that server's proxy NAME
// listens, {{port:NAME}} its port.
type compatRequest struct{ method, path, body, ua string }

// compatRequests is what TestCompatWithToxiproxy sends, in order; up is the
// upstream, busy an address in use.
func compatRequests(up, busy string) []compatRequest {
	return []compatRequest{
		{"GET", "/proxies", "", ""},
		{"GET", "/version", "", ""},
		{"POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"` + up + `"}`, ""},
		{"POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"` + up + `"}`, ""},
		{"POST", "/proxies", `{"name":"off","listen":"127.0.0.1:0","upstream":"` + up + `","enabled":false}`, ""},
		{"POST", "/proxies", `{"name":`, ""},
		{"POST", "/proxies", `{"name":1}`, ""},
		{"POST", "/proxies", `{"upstream":"x:1"}`, ""},
		{"POST", "/proxies", `{"name":"q"}`, ""},
		{"POST", "/proxies", `{"name":"busy","listen":"` + busy + `","upstream":"x:1"}`, ""},
		{"POST", "/proxies", `{"name":"np","listen":"nope","upstream":"x:1"}`, ""},
		{"POST", "/proxies", `{"name":"bp","listen":"127.0.0.1:99999","upstream":"x:1"}`, ""},
		{"POST", "/proxies", `{"name":"u","listen":"127.0.0.1:0","upstream":"x:1","colour":"red","toxics":[1]}`, ""},
		{"POST", "/proxies", `{"name":"lh","listen":"localhost:0","upstream":"x:1"}`, ""},
		{"POST", "/proxies", strings.Repeat("x", 2<<20), ""},
		{"POST", "/proxies", `{"name":"tj","listen":"127.0.0.1:0","upstream":"x:1"}` + strings.Repeat(" x", 1<<20), ""},
		{"GET", "/proxies/p", "", ""},
		{"GET", "/proxies/nope", "", ""},
		{"GET", "/proxies", "", ""},
		{"GET", "/proxies/p/toxics", "", ""},
		{"GET", "/proxies/nope/toxics", "", ""},
		{"POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":100,"jitter":5}}`, ""},
		{"POST", "/proxies/p/toxics", `{"type":"latency"}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"bw","type":"bandwidth","stream":"upstream","toxicity":0.5,"attributes":{"rate":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"sc","type":"slow_close","attributes":{"delay":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"to","type":"timeout","stream":"upstream","attributes":{"timeout":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"rp","type":"reset_peer","attributes":{"timeout":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"sl","type":"slicer","attributes":{"average_size":10,"size_variation":2,"delay":1}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"ld","type":"limit_data","attributes":{"bytes":10}}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"no","type":"noop"}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"uf","type":"noop","colour":"red","attributes":{"colour":"red"}}`, ""},
		{"POST", "/proxies/p/toxics", `{"type":"nonsense"}`, ""},
		{"POST", "/proxies/p/toxics", `{"type":"latency","stream":"sideways"}`, ""},
		{"POST", "/proxies/p/toxics", `{"name":"x","type":"latency","attributes":{"latency":"slow"}}`, ""},
		{"POST", "/proxies/p/toxics", `nope`, ""},
		{"POST", "/proxies/p/toxics", strings.Repeat("x", 2<<20), ""},
		{"POST", "/proxies/p/toxics", `{"name":"tj","type":"noop"}` + strings.Repeat(" x", 1<<20), ""},
		{"POST", "/proxies/nope/toxics", `{"type":"latency"}`, ""},
		{"GET", "/proxies/p/toxics", "", ""},
		{"GET", "/proxies/p/toxics/bw", "", ""},
		{"GET", "/proxies/p/toxics/nope", "", ""},
		{"POST", "/proxies/p/toxics/bw", `{"toxicity":0.25,"attributes":{"rate":20}}`, ""},
		{"PATCH", "/proxies/p/toxics/bw", `{"toxicity":0.75,"attributes":{"rate":30}}`, ""},
		{"PATCH", "/proxies/p/toxics/bw", `{"attributes":{"rate":"x"}}`, ""},
		{"POST", "/proxies/p/toxics/bw", `{"attributes":{"rate":"x"}}`, ""},
		{"POST", "/proxies/p/toxics/nope", `{}`, ""},
		{"PATCH", "/proxies/p/toxics/nope", `{}`, ""},
		{"PATCH", "/proxies/nope/toxics/bw", `{}`, ""},
		{"DELETE", "/proxies/p/toxics/sc", "", ""},
		{"DELETE", "/proxies/p/toxics/sc", "", ""},
		{"DELETE", "/proxies/nope/toxics/sc", "", ""},
		{"PUT", "/proxies/p/toxics/bw", "", ""},
		{"GET", "/proxies/p", "", ""},
		{"POST", "/proxies/p", `{"enabled":false}`, "toxiproxy-cli"},
		{"GET", "/proxies/p", "", ""},
		{"PATCH", "/proxies/p", `{"enabled":true}`, ""},
		{"PATCH", "/proxies/p", `{"listen":"{{listen:p}}"}`, ""},
		{"PATCH", "/proxies/p", `{"listen":"localhost:{{port:p}}","colour":"red"}`, ""},
		{"GET", "/proxies/p/toxics", "", ""},
		{"PATCH", "/proxies/p", `{"listen":"nope"}`, ""},
		{"PATCH", "/proxies/off", `{"listen":"` + busy + `","enabled":true}`, ""},
		{"GET", "/proxies/off", "", ""},
		{"PATCH", "/proxies/off", `{"listen":"127.0.0.1:0"}`, ""},
		{"POST", "/proxies/p", `{"enabled":`, ""},
		{"PATCH", "/proxies/p", `{"enabled":`, ""},
		{"POST", "/proxies/nope", `{}`, ""},
		{"PATCH", "/proxies/nope", `{}`, ""},
		{"POST", "/reset", "", ""},
		{"POST", "/reset", "anything", ""},
		{"GET", "/proxies", "", ""},
		{"POST", "/populate", `{`, ""},
		{"POST", "/populate", `[{"name":"a"}]`, ""},
		{"POST", "/populate", `[{"upstream":"x:1"}]`, ""},
		{"POST", "/populate", `[]`, ""},
		{"POST", "/populate", `[{"name":"a","listen":"127.0.0.1:0","upstream":"` + up + `"},{"name":"b","listen":"127.0.0.1:0","upstream":"` + up + `","enabled":false}]`, ""},
		{"POST", "/proxies/a/toxics", `{"name":"kept","type":"latency","attributes":{"latency":1}}`, ""},
		// 2.12: a listen address that resolves to the one the proxy
		// listens on keeps it, toxics and all.
		{"POST", "/populate", `[{"name":"a","listen":"{{listen:a}}","upstream":"` + up + `"}]`, ""},
		{"POST", "/populate", `[{"name":"a","listen":"localhost:{{port:a}}","upstream":"` + up + `"}]`, ""},
		{"GET", "/proxies/a/toxics", "", ""},
		{"POST", "/populate", `[{"name":"a","listen":"localhost:{{port:a}}","upstream":"` + up + `","enabled":false}]`, ""},
		{"POST", "/populate", `[{"name":"b","listen":"127.0.0.1:0","upstream":"` + up + `","enabled":false}]`, ""},
		{"POST", "/populate", `[{"name":"a","listen":"nope","upstream":"` + up + `"}]`, ""},
		{"POST", "/populate", `[{"name":"a","listen":"127.0.0.1:0","upstream":"x:2"}]`, ""},
		{"GET", "/proxies/a/toxics", "", ""},
		{"POST", "/populate", `[{"name":"c","listen":"` + busy + `","upstream":"x:1"}]`, ""},
		{"POST", "/populate", `[{"name":"d","listen":"nope","upstream":"x:1"}]`, ""},
		{"GET", "/proxies", "", "Mozilla/5.0"},
		{"GET", "/version", "", "Mozilla/5.0"},
		{"PUT", "/proxies", "", "Mozilla/5.0"},
		{"GET", "/nothing", "", "Mozilla/5.0"},
		{"PUT", "/proxies", "", ""},
		{"HEAD", "/proxies", "", ""},
		{"HEAD", "/version", "", ""},
		{"OPTIONS", "/proxies", "", ""},
		{"PATCH", "/proxies", "", ""},
		{"DELETE", "/reset", "", ""},
		{"GET", "/populate", "", ""},
		{"POST", "/version", "", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/nothing", "", ""},
		{"GET", "/proxies/", "", ""},
		{"GET", "/proxies/p/toxics/", "", ""},
		{"GET", "/proxies/p/toxics/bw/more", "", ""},
		{"DELETE", "/proxies/b", "", ""},
		{"DELETE", "/proxies/b", "", ""},
		{"GET", "/proxies/b", "", ""},
	}
}

// compatAnswer is what a server answered to one request, as compared.
type compatAnswer struct {
	status      int
	contentType string
	nosniff     string
	requestID   string // "", or "ID" if it has toxiproxy's shape
	headers     string // the header names, sorted, but those that vary
	body        string // addresses masked
}

// TestCompatWithToxiproxy sends the same requests to toxiproxy-server
// v2.12.0 itself and to a Server, and compares status, Content-Type,
// X-Content-Type-Options, the request id (present, and its shape: ids are
// random), the set of header names and the body (addresses masked; JSON as
// JSON).
func TestCompatWithToxiproxy(t *testing.T) {
	testenv.SkipIfShort(t, "builds toxiproxy-server (up to 18 s uncached) and sends both servers the same requests: 2 s cached")
	theirs := startToxiproxy(t)
	e := newEnv(t, listener.Auto)
	ours := e.api.URL
	up := echoServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := regexp.MustCompile(`(127\.0\.0\.1|\[::\]):\d+`)
	mask := func(s string) string { return addr.ReplaceAllString(s, "ADDR") }
	varying := map[string]bool{"Date": true, "Content-Length": true, versionHeader: true}
	send := func(base string, r compatRequest) compatAnswer {
		body := expandCompatBody(t, base, r.body)
		req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if r.ua != "" {
			req.Header.Set("User-Agent", r.ua)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		a := compatAnswer{
			status:      resp.StatusCode,
			contentType: resp.Header.Get("Content-Type"),
			nosniff:     resp.Header.Get("X-Content-Type-Options"),
			body:        mask(string(b)),
		}
		if id, ok := resp.Header[requestIDHeader]; ok {
			a.requestID = "ID"
			if len(id) != 1 || !requestIDShape.MatchString(id[0]) {
				a.requestID = fmt.Sprintf("%q", id)
			}
		}
		var names []string
		for k := range resp.Header {
			if !varying[k] {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		a.headers = strings.Join(names, ",")
		return a
	}
	reqs := compatRequests(up, busy.Addr().String())
	for _, r := range reqs {
		th := send(theirs, r)
		oh := send(ours, r)
		what := r.method + " " + r.path + " " + r.body[:min(len(r.body), 200)]
		if th.status != oh.status || th.contentType != oh.contentType || th.nosniff != oh.nosniff ||
			th.requestID != oh.requestID || th.headers != oh.headers {
			t.Errorf("%s:\n toxiproxy %d %q nosniff=%q id=%q [%s] %s\n ours      %d %q nosniff=%q id=%q [%s] %s", what,
				th.status, th.contentType, th.nosniff, th.requestID, th.headers, th.body,
				oh.status, oh.contentType, oh.nosniff, oh.requestID, oh.headers, oh.body)
			continue
		}
		if !sameJSON(th.body, oh.body) {
			t.Errorf("%s: bodies differ\n toxiproxy %s\n ours      %s", what, th.body, oh.body)
		}
	}
	t.Logf("%d requests compared with toxiproxy-server v%s", len(reqs), Version)
	// The server kept serving.
	if code, _, _ := e.do(t, "GET", "/proxies", ""); code != http.StatusOK {
		t.Errorf("after the comparison GET /proxies answered %d", code)
	}
}

// expandCompatBody fills a request body's {{listen:NAME}} and {{port:NAME}}
// with where the server at base has proxy NAME listen.
func expandCompatBody(t *testing.T, base, body string) string {
	t.Helper()
	return compatPlaceholder.ReplaceAllStringFunc(body, func(m string) string {
		sub := compatPlaceholder.FindStringSubmatch(m)
		resp, err := http.Get(base + "/proxies/" + sub[2])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Listen string }
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Listen == "" {
			t.Fatalf("%s: proxy %s has no listen address (%v)", base, sub[2], err)
		}
		if sub[1] == "port" {
			_, port, _ := net.SplitHostPort(p.Listen)
			return port
		}
		return p.Listen
	})
}

var compatPlaceholder = regexp.MustCompile(`\{\{(listen|port):([a-z]+)\}\}`)

// sameJSON compares two bodies as JSON if both parse (maps are unordered),
// as text otherwise.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}
