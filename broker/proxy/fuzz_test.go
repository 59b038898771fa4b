package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/synhold/synhold/listener"
)

// FuzzAPI sends arbitrary bodies to every route that parses one: the server
// answers with one of toxiproxy's status codes, an error body is
// {error, status}, and the next request is still served.
func FuzzAPI(f *testing.F) {
	for _, s := range []string{
		`{"type":"latency","attributes":{"latency":1}}`,
		`{"type":"handshake_delay","attributes":{"delay":5,"jitter":1},"toxicity":0.5}`,
		`{"type":"handshake_refuse","attributes":{"delay":-1}}`,
		`{"type":"handshake_hold","stream":"upstream"}`,
		`{"name":"x","upstream":"127.0.0.1:1","listen":"127.0.0.1:0","enabled":false}`,
		`[{"name":"y","upstream":"127.0.0.1:1","enabled":false}]`,
		`{"attributes":{"delay":"x"}}`, `nope`, `{`, `[]`, ``,
	} {
		f.Add(s)
	}
	// Whatever listen address a body names, listen on loopback: no name is
	// ever resolved, no other address bound.
	old := openGate
	openGate = func(network, address string, cfg gateConfig) (gate, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return &fakeGate{Listener: ln, strategy: listener.Replay}, nil
	}
	defer func() { openGate = old }()
	oldResolve := resolveTCP
	resolveTCP = func(address string) (*net.TCPAddr, error) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return nil, &net.AddrError{Err: "not resolved in the fuzz test", Addr: address}
		}
		return net.TCPAddrFromAddrPort(ap), nil
	}
	defer func() { resolveTCP = oldResolve }()
	s, err := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Strategy: listener.Auto, Seed: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	setup := httptest.NewRequest("POST", "/proxies", strings.NewReader(`{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","enabled":false}`))
	s.ServeHTTP(httptest.NewRecorder(), setup)
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/proxies/p/toxics", strings.NewReader(`{"name":"t","type":"handshake_delay"}`)))
	ok := map[int]bool{200: true, 201: true, 204: true, 400: true, 404: true, 409: true, 500: true, 501: true}
	f.Fuzz(func(t *testing.T, body string) {
		for _, route := range []string{"POST /proxies", "POST /populate", "POST /proxies/p", "PATCH /proxies/p",
			"POST /proxies/p/toxics", "POST /proxies/p/toxics/t", "PATCH /proxies/p/toxics/t"} {
			method, path, _ := strings.Cut(route, " ")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
			if !ok[w.Code] {
				t.Fatalf("%s %q: status %d", route, body, w.Code)
			}
			if w.Code >= 400 && !strings.HasPrefix(w.Body.String(), `{"error":`) {
				t.Fatalf("%s %q: error body %q", route, body, w.Body.String())
			}
		}
		// Undo what the body may have created, so that runs stay small.
		s.Close()
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/proxies", strings.NewReader(`{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","enabled":false}`)))
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/proxies/p/toxics", strings.NewReader(`{"name":"t","type":"handshake_delay"}`)))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/proxies/p", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("after %q: GET /proxies/p answered %d", body, w.Code)
		}
	})
}
