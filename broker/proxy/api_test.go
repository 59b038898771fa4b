package proxy

import (
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/synhold/synhold/listener"
)

// TestAPIErrors checks status codes, error bodies, content types and the
// request id against what toxiproxy v2.12.0's api.go answers, request by
// request, and that the server keeps serving after each.
func TestAPIErrors(t *testing.T) {
	e := newEnv(t, listener.Auto)
	up := echoServer(t)
	if code, _, body := e.do(t, "POST", "/proxies", `{"name":"p","listen":"127.0.0.1:0","upstream":"`+up+`"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, body := e.do(t, "POST", "/proxies", `{"name":"off","listen":"127.0.0.1:0","upstream":"`+up+`","enabled":false}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	const textPlain = "text/plain; charset=utf-8"
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		code                     int
		want                     string // the exact body, or its prefix when wantPrefix
		prefix                   bool
		ctype                    string
		noID                     bool // no X-Toxiproxy-Request-Id: the router matched no route
	}{
		{name: "malformed proxy JSON", method: "POST", path: "/proxies", body: `{"name":`, code: 400,
			want: `{"error":"bad request body: unexpected EOF","status":400}` + "\n", ctype: textPlain},
		{name: "proxy field of the wrong type", method: "POST", path: "/proxies", body: `{"name":1}`, code: 400,
			want: `{"error":"bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string","status":400}` + "\n", ctype: textPlain},
		{name: "no name", method: "POST", path: "/proxies", body: `{"upstream":"x:1"}`, code: 400,
			want: `{"error":"missing required field: name","status":400}` + "\n", ctype: textPlain},
		{name: "no upstream", method: "POST", path: "/proxies", body: `{"name":"q"}`, code: 400,
			want: `{"error":"missing required field: upstream","status":400}` + "\n", ctype: textPlain},
		{name: "duplicate", method: "POST", path: "/proxies", body: `{"name":"p","upstream":"x:1"}`, code: 409,
			want: `{"error":"proxy already exists","status":409}` + "\n", ctype: textPlain},
		{name: "listen address in use", method: "POST", path: "/proxies",
			body: `{"name":"busy","listen":"` + busy.Addr().String() + `","upstream":"x:1"}`, code: 500,
			want: `{"error":"listen tcp ` + busy.Addr().String() + `: bind: address already in use","status":500}` + "\n", ctype: textPlain},
		{name: "listen address without a port", method: "POST", path: "/proxies", body: `{"name":"np","listen":"nope","upstream":"x:1"}`, code: 500,
			want: `{"error":"listen tcp: address nope: missing port in address","status":500}` + "\n", ctype: textPlain},
		{name: "update to a listen address without a port", method: "PATCH", path: "/proxies/p", body: `{"listen":"nope"}`, code: 500,
			want: `{"error":"address nope: missing port in address","status":500}` + "\n", ctype: textPlain},
		{name: "update to a listen address in use", method: "PATCH", path: "/proxies/off", body: `{"listen":"` + busy.Addr().String() + `","enabled":true}`, code: 500,
			want: `{"error":"listen tcp ` + busy.Addr().String() + `: bind: address already in use","status":500}` + "\n", ctype: textPlain},
		{name: "patch unknown proxy", method: "PATCH", path: "/proxies/nope", body: `{}`, code: 404,
			want: `{"error":"proxy not found","status":404}` + "\n", ctype: textPlain},
		{name: "unknown field", method: "PATCH", path: "/proxies/p", body: `{"colour":"red"}`, code: 200,
			want: `"enabled":true`, ctype: "application/json"},
		{name: "unknown proxy", method: "GET", path: "/proxies/nope", code: 404,
			want: `{"error":"proxy not found","status":404}` + "\n", ctype: textPlain},
		{name: "unknown proxy's toxics", method: "POST", path: "/proxies/nope/toxics", body: `{"type":"latency"}`, code: 404,
			want: `{"error":"proxy not found","status":404}` + "\n", ctype: textPlain},
		{name: "delete unknown proxy", method: "DELETE", path: "/proxies/nope", code: 404,
			want: `{"error":"proxy not found","status":404}` + "\n", ctype: textPlain},
		{name: "unknown toxic type", method: "POST", path: "/proxies/p/toxics", body: `{"type":"nonsense"}`, code: 400,
			want: `{"error":"invalid toxic type","status":400}` + "\n", ctype: textPlain},
		{name: "bad stream", method: "POST", path: "/proxies/p/toxics", body: `{"type":"latency","stream":"sideways"}`, code: 400,
			want: `{"error":"stream was invalid, can be either upstream or downstream","status":400}` + "\n", ctype: textPlain},
		{name: "bad attributes", method: "POST", path: "/proxies/p/toxics", body: `{"type":"latency","attributes":{"latency":"slow"}}`, code: 400,
			want: `{"error":"bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64","status":400}` + "\n", ctype: textPlain},
		{name: "malformed toxic JSON", method: "POST", path: "/proxies/p/toxics", body: `nope`, code: 400,
			want: `{"error":"bad request body: invalid character 'o' in literal null (expecting 'u')","status":400}` + "\n", ctype: textPlain},
		{name: "add a toxic", method: "POST", path: "/proxies/p/toxics", body: `{"type":"latency","attributes":{"latency":1}}`, code: 200,
			want: `{"attributes":{"latency":1,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`, ctype: "application/json"},
		{name: "toxic exists", method: "POST", path: "/proxies/p/toxics", body: `{"type":"latency"}`, code: 409,
			want: `{"error":"toxic already exists","status":409}` + "\n", ctype: textPlain},
		{name: "unknown toxic", method: "GET", path: "/proxies/p/toxics/nope", code: 404,
			want: `{"error":"toxic not found","status":404}` + "\n", ctype: textPlain},
		{name: "update unknown toxic", method: "POST", path: "/proxies/p/toxics/nope", body: `{}`, code: 404,
			want: `{"error":"toxic not found","status":404}` + "\n", ctype: textPlain},
		{name: "patch unknown toxic", method: "PATCH", path: "/proxies/p/toxics/nope", body: `{}`, code: 404,
			want: `{"error":"toxic not found","status":404}` + "\n", ctype: textPlain},
		{name: "delete unknown toxic", method: "DELETE", path: "/proxies/p/toxics/nope", code: 404,
			want: `{"error":"toxic not found","status":404}` + "\n", ctype: textPlain},
		{name: "bad handshake delay", method: "POST", path: "/proxies/p/toxics", body: `{"type":"handshake_delay","attributes":{"delay":-1}}`, code: 400,
			want: `"status":400}`, prefix: false, ctype: textPlain},
		{name: "browser", method: "GET", path: "/proxies", hdr: []string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"}, code: 403,
			want: "User agent not allowed\n", ctype: textPlain},
		{name: "wrong method", method: "PUT", path: "/proxies", code: 405, want: "", noID: true},
		{name: "HEAD on a GET route", method: "HEAD", path: "/proxies", code: 405, want: "", noID: true},
		{name: "browser on a wrong method", method: "PUT", path: "/proxies", hdr: []string{"User-Agent", "Mozilla/5.0"}, code: 405, want: "", noID: true},
		{name: "unknown path", method: "GET", path: "/nothing", code: 404, want: "404 page not found\n", ctype: textPlain, noID: true},
		{name: "metrics off", method: "GET", path: "/metrics", code: 404, want: "404 page not found\n", ctype: textPlain, noID: true},
		{name: "version", method: "GET", path: "/version", code: 200, want: `{"version": "` + Version + `"}` + "\n", ctype: "application/json;charset=utf-8"},
		{name: "populate malformed", method: "POST", path: "/populate", body: `{`, code: 400,
			want: `{"error":"bad request body: unexpected EOF","status":400,"proxies":null}`, ctype: "application/json"},
		{name: "populate no upstream", method: "POST", path: "/populate", body: `[{"name":"a"}]`, code: 400,
			want: `{"error":"missing required field: upstream at proxy 1","status":400,"proxies":null}`, ctype: "application/json"},
		{name: "body too large", method: "POST", path: "/proxies", body: `{"name":"` + strings.Repeat("x", maxBody) + `"}`, code: 400,
			want: `{"error":"bad request body: http: request body too large","status":400}` + "\n", ctype: textPlain},
		{name: "toxic body too large", method: "POST", path: "/proxies/p/toxics", body: `{"type":"latency","name":"` + strings.Repeat("x", maxBody) + `"}`, code: 400,
			want: `{"error":"bad request body: http: request body too large","status":400}` + "\n", ctype: textPlain},
		{name: "populate empty", method: "POST", path: "/populate", body: `[]`, code: 201,
			want: `{"proxies":null}`, ctype: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, body := e.do(t, tt.method, tt.path, tt.body, tt.hdr...)
			if code != tt.code {
				t.Errorf("status %d, want %d (body %q)", code, tt.code, body)
			}
			switch {
			case tt.prefix && !strings.HasPrefix(body, tt.want):
				t.Errorf("body %q, want it to start with %q", body, tt.want)
			case !tt.prefix && strings.HasPrefix(tt.want, `"`) && !strings.Contains(body, tt.want):
				t.Errorf("body %q, want it to contain %q", body, tt.want)
			case !tt.prefix && !strings.HasPrefix(tt.want, `"`) && body != tt.want:
				t.Errorf("body %q, want %q", body, tt.want)
			}
			if id := hdr.Get(requestIDHeader); tt.noID != (id == "") || id != "" && !requestIDShape.MatchString(id) {
				t.Errorf("%s %q, want one (20 of [0-9a-v]) unless the router matched no route (%v)", requestIDHeader, id, tt.noID)
			}
			if hdr.Get(versionHeader) == "" {
				t.Errorf("no %s header", versionHeader)
			}
			if tt.ctype != "" && hdr.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", hdr.Get("Content-Type"), tt.ctype)
			}
			if code >= 400 && code != 404 && code != 405 && tt.ctype == textPlain && strings.HasPrefix(body, "{") {
				var apiErr struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal([]byte(body), &apiErr); err != nil || apiErr.Status != code || apiErr.Error == "" {
					t.Errorf("error body %q: not toxiproxy's {error, status}", body)
				}
			}
			// The server keeps serving.
			if code, _, _ := e.do(t, "GET", "/proxies/p", ""); code != 200 {
				t.Fatalf("after %s: GET /proxies/p answered %d", tt.name, code)
			}
		})
	}
}

// requestIDShape is toxiproxy's request id (an xid).
var requestIDShape = regexp.MustCompile(`^[0-9a-v]{20}$`)
