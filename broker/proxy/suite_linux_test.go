package proxy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/synhold/synhold/internal/testenv"
)

// TestToxiproxyAPISuite runs toxiproxy's own API test suite (api_test.go of
// the module this one requires, v2.12.0, 34 tests) against a Server: its
// WithServer serves our Server where it served toxiproxy's ApiServer, and
// the rest of the file runs as it is, but for one expectation: the suite
// expects /version to say "git" (toxiproxy's version variable unset, as in
// its own test binary), ours says Version.
//
// The suite listens on fixed ports (8475, 3310, 7070...), so it runs in a
// network namespace of its own, which needs root (CAP_SYS_ADMIN). The
// package is compiled through an overlay: nothing is written into the tree.
func TestToxiproxyAPISuite(t *testing.T) {
	testenv.SkipIfShort(t, "builds toxiproxy's API suite and runs its 34 tests: 3 s cached, up to 30 s uncached")
	testenv.SkipUnlessRoot(t, "CAP_SYS_ADMIN (a network namespace of its own: the suite uses fixed ports)")
	for _, tool := range []string{"unshare(1) from util-linux", "ip(8) from iproute2"} {
		if _, err := exec.LookPath(tool[:strings.IndexByte(tool, '(')]); err != nil {
			testenv.SkipWithoutFeature(t, tool+" (a network namespace)", err)
		}
	}
	goCmd := testenv.GoCommand(t)
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/Shopify/toxiproxy/v2").Output()
	if err != nil {
		t.Fatalf("go list toxiproxy's module: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "api_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	suite, err := adaptAPISuite(string(src))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(cwd, "internal", "toxiproxysuite") // exists only in the overlay
	files := map[string]string{"api_test.go": suite, "server_test.go": suiteServer}
	replace := map[string]string{}
	for name, text := range files {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		replace[filepath.Join(pkg, name)] = p
	}
	overlay := filepath.Join(tmp, "overlay.json")
	js, err := json.Marshal(struct{ Replace map[string]string }{replace})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(overlay, js, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "suite.test")
	build := exec.Command(goCmd, "test", "-c", "-vet=off", "-overlay", overlay, "-o", bin, "./internal/toxiproxysuite")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building toxiproxy's API suite: %v\n%s", err, out)
	}
	run := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up && exec \"$0\" -test.v -test.count=1", bin)
	run.Dir = tmp
	res, err := run.CombinedOutput()
	passed := regexp.MustCompile(`(?m)^--- PASS: (\S+)`).FindAllStringSubmatch(string(res), -1)
	failed := regexp.MustCompile(`(?m)^--- FAIL: (\S+)`).FindAllStringSubmatch(string(res), -1)
	t.Logf("toxiproxy v%s api_test.go against handshake-proxy: %d passed, %d failed", Version, len(passed), len(failed))
	if err != nil || len(failed) > 0 {
		t.Errorf("toxiproxy's API suite: %v; failed %v\n%s", err, failed, res)
	}
	if len(passed) < 30 {
		t.Errorf("only %d of the suite's tests passed (it has 34):\n%s", len(passed), res)
	}
}

// adaptAPISuite makes toxiproxy's api_test.go run against our Server: its
// WithServer and testServer go (suiteServer has ours), with the imports only
// they used, and /version is expected to say Version.
func adaptAPISuite(src string) (string, error) {
	cut := func(from, to string) error {
		a, b := strings.Index(src, from), strings.Index(src, to)
		if a < 0 || b < a {
			return fmt.Errorf("toxiproxy's api_test.go: no %q before %q: has it changed?", from, to)
		}
		src = src[:a] + src[b:]
		return nil
	}
	if err := cut("var testServer *toxiproxy.ApiServer\n", "\nvar client = "); err != nil {
		return "", err
	}
	if err := cut("func WithServer(", "func TestRequestId("); err != nil {
		return "", err
	}
	for _, imp := range []string{"flag", "os", "time", "github.com/prometheus/client_golang/prometheus",
		"github.com/rs/zerolog", "github.com/Shopify/toxiproxy/v2"} {
		src = strings.Replace(src, "\t\""+imp+"\"\n", "", 1)
	}
	const want = `"{\"version\": \"git\"}\n"`
	if !strings.Contains(src, want) {
		return "", fmt.Errorf("toxiproxy's api_test.go: no %s: has it changed?", want)
	}
	src = strings.Replace(src, want, fmt.Sprintf("%q", fmt.Sprintf("{\"version\": %q}\n", Version)), 1)
	return src, nil
}

// suiteServer is the WithServer toxiproxy's suite runs with: our Server on
// the address the suite expects, cleared after each test as toxiproxy's
// collection is.
const suiteServer = `package toxiproxy_test

import (
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/synhold/synhold/broker/proxy"
)

var testServer *proxy.Server

var _ = time.Second // api_test.go may or may not use time

func WithServer(t *testing.T, f func(string)) {
	if testServer == nil {
		var w io.Writer = io.Discard
		if flag.Lookup("test.v").Value.String() == "true" {
			w = os.Stderr
		}
		s, err := proxy.NewServer(proxy.Config{Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "localhost:8475")
		if err != nil {
			t.Fatal(err)
		}
		go http.Serve(ln, s)
		testServer = s
	}
	defer testServer.Close()
	f("http://localhost:8475")
}

func AssertProxyUp(t *testing.T, addr string, up bool) net.Conn {
	conn, err := net.Dial("tcp", addr)
	if err != nil && up {
		t.Error("Expected proxy to be up:", err)
	} else if err == nil && !up {
		t.Error("Expected proxy to be down")
	}
	return conn
}
`
