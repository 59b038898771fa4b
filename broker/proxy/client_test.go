package proxy

import (
	"net"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/listener"
)

// TestClientLifecycle drives a proxy with toxiproxy's own Go client: create
// on port 0, forward, a latency toxic, disable (refused), enable, update the
// upstream, reset, delete.
func TestClientLifecycle(t *testing.T) {
	e := newEnv(t, listener.Auto)
	up := echoServer(t)
	p, err := e.client.CreateProxy("echo", "127.0.0.1:0", up)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled || strings.HasSuffix(p.Listen, ":0") || !strings.HasPrefix(p.Listen, "127.0.0.1:") {
		t.Fatalf("created %+v: want enabled, listening on a picked port", p)
	}
	c := dial(t, p.Listen)
	direct := roundTrip(t, c, "hello")

	if _, err := p.AddToxic("lag", "latency", "downstream", 1, toxiclient.Attributes{"latency": 1000}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, c, "slow"); d < time.Second {
		t.Errorf("with 1000 ms latency downstream the round trip took %v (before: %v)", d, direct)
	}
	got, err := e.client.Proxy("echo")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ActiveToxics) != 1 || got.ActiveToxics[0].Name != "lag" || got.ActiveToxics[0].Attributes["latency"] != 1000.0 {
		t.Fatalf("proxy's toxics: %+v", got.ActiveToxics)
	}
	if _, err := p.UpdateToxic("lag", 1, toxiclient.Attributes{"latency": 0}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, c, "fast"); d > 700*time.Millisecond {
		t.Errorf("latency updated to 0: round trip took %v", d)
	}

	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", p.Listen, 2*time.Second); !isRefused(err) {
		t.Fatalf("disabled proxy: dial err = %v, want connection refused", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("disabled proxy: an open connection still reads (%d bytes)", n)
	}
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Listen), "again")

	if err := e.client.ResetState(); err != nil {
		t.Fatal(err)
	}
	toxics, err := p.Toxics()
	if err != nil || len(toxics) != 0 {
		t.Fatalf("after reset: toxics %v, err %v", toxics, err)
	}
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	if err := e.client.ResetState(); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.client.Proxy("echo"); !got.Enabled {
		t.Fatal("reset did not enable a disabled proxy")
	}

	other := echoServer(t)
	p.Upstream, p.Enabled = other, true
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Listen), "moved")
	if err := p.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Proxy("echo"); err == nil || !strings.Contains(err.Error(), "proxy not found") {
		t.Fatalf("deleted proxy: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Listen, 2*time.Second); !isRefused(err) {
		t.Fatalf("deleted proxy: dial err = %v, want connection refused", err)
	}
}

// TestClientV212 drives the server with toxiproxy's Go client v2.12.0 where
// it speaks 2.6+: Version reads the JSON, UpdateToxic sends PATCH, the
// proxy's Save (an update) and RemoveToxic, and Populate with a host name
// keeps an unchanged proxy and its toxics.
func TestClientV212(t *testing.T) {
	e := newEnv(t, listener.Auto)
	v, err := e.client.Version()
	if err != nil || string(v) != `{"version": "`+Version+`"}`+"\n" {
		t.Fatalf("Version: %q, %v", v, err)
	}
	up := echoServer(t)
	p, err := e.client.CreateProxy("echo", "127.0.0.1:0", up)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("lag", "latency", "upstream", 0.5, toxiclient.Attributes{"latency": 5}); err != nil {
		t.Fatal(err)
	}
	tx, err := p.UpdateToxic("lag", 1, toxiclient.Attributes{"latency": 7})
	if err != nil || tx.Toxicity != 1 || tx.Attributes["latency"] != 7.0 || tx.Stream != "upstream" {
		t.Fatalf("UpdateToxic (PATCH): %+v, %v", tx, err)
	}
	_, port, _ := net.SplitHostPort(p.Listen)
	c := dial(t, p.Listen)
	roundTrip(t, c, "before")
	ps, err := e.client.Populate([]toxiclient.Proxy{{Name: "echo", Listen: "localhost:" + port, Upstream: up, Enabled: true}})
	if err != nil || len(ps) != 1 || ps[0].Listen != p.Listen {
		t.Fatalf("Populate with localhost:%s: %+v, %v", port, ps, err)
	}
	roundTrip(t, c, "kept") // the same connection: the proxy was not restarted
	if ts, err := p.Toxics(); err != nil || len(ts) != 1 || ts[0].Name != "lag" {
		t.Fatalf("toxics after populate: %+v, %v", ts, err)
	}
	if err := p.RemoveToxic("lag"); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveToxic("lag"); err == nil || !strings.Contains(err.Error(), "toxic not found") {
		t.Fatalf("removing it again: %v", err)
	}
	p.Enabled = false
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	if got, err := e.client.Proxy("echo"); err != nil || got.Enabled {
		t.Fatalf("after Save disabled: %+v, %v", got, err)
	}
	if err := e.client.ResetState(); err != nil {
		t.Fatal(err)
	}
	if got, err := e.client.Proxy("echo"); err != nil || !got.Enabled || got.Listen != p.Listen {
		t.Fatalf("after ResetState: %+v, %v", got, err)
	}
}

// TestClientPopulate creates proxies with Populate, keeps one that is
// unchanged, and replaces one whose upstream changed.
func TestClientPopulate(t *testing.T) {
	e := newEnv(t, listener.Auto)
	up := echoServer(t)
	ps, err := e.client.Populate([]toxiclient.Proxy{
		{Name: "a", Listen: "127.0.0.1:0", Upstream: up, Enabled: true},
		{Name: "b", Listen: "127.0.0.1:0", Upstream: up},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "a" || !ps[0].Enabled || ps[1].Enabled {
		t.Fatalf("populated %+v", ps)
	}
	roundTrip(t, dial(t, ps[0].Listen), "a")

	again, err := e.client.Populate([]toxiclient.Proxy{{Name: "a", Listen: ps[0].Listen, Upstream: up, Enabled: true}})
	if err != nil || len(again) != 1 || again[0].Listen != ps[0].Listen || !again[0].Enabled {
		t.Fatalf("populate unchanged: %+v, %v", again, err)
	}
	if _, err := e.client.Populate([]toxiclient.Proxy{{Name: "", Upstream: up}}); err == nil ||
		!strings.Contains(err.Error(), "missing required field: name at proxy 1") {
		t.Fatalf("populate without a name: %v", err)
	}
	all, err := e.client.Proxies()
	if err != nil || len(all) != 2 {
		t.Fatalf("proxies: %v, %v", all, err)
	}
}

// TestDisabledAtCreate: enabled false creates a proxy that refuses
// connections until enabled.
func TestDisabledAtCreate(t *testing.T) {
	e := newEnv(t, listener.Auto)
	up := echoServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := e.client.NewProxy()
	p.Name, p.Listen, p.Upstream, p.Enabled = "off", addr, up, false
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	if p.Enabled || p.Listen != addr {
		t.Fatalf("created %+v", p)
	}
	if _, err := net.DialTimeout("tcp", addr, 2*time.Second); !isRefused(err) {
		t.Fatalf("disabled at create: dial err = %v, want refused", err)
	}
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, addr), "on")
}
