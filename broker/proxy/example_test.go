package proxy_test

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/synhold/synhold/broker/proxy"
)

// A Server serves toxiproxy's API on an http.Server, and toxiproxy's own Go
// client drives it: here a proxy in front of a local service, whose
// handshakes a handshake_delay toxic delays by 200 ms. Without CAP_NET_RAW
// the API refuses the toxic with 501 and says why.
func Example() {
	upstream, err := net.Listen("tcp", "127.0.0.1:0") // the service under test
	if err != nil {
		log.Fatal(err)
	}
	defer upstream.Close()
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	srv, err := proxy.NewServer(proxy.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close() // stops the proxies

	api, err := net.Listen("tcp", "127.0.0.1:0") // toxiproxy's is localhost:8474
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(api)
	defer hs.Close()

	client := toxiclient.NewClient(api.Addr().String())
	p, err := client.CreateProxy("service", "127.0.0.1:0", upstream.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	_, err = p.AddToxic("slow_syn", "handshake_delay", "downstream", 1, toxiclient.Attributes{"delay": 200})
	if err != nil {
		log.Fatal(err) // 501 without CAP_NET_RAW, naming it
	}
	start := time.Now()
	c, err := net.Dial("tcp", p.Listen)
	if err != nil {
		log.Fatal(err)
	}
	c.Close()
	fmt.Println("connected after", time.Since(start).Round(10*time.Millisecond))
}
