package main

import (
	"io"
	"net/http"
	"strings"

	"github.com/synhold/synhold/bench/internal/proxybench"
)

// ProxyResults is the proxy part (proxy.json, proxy.md): handshake-proxy's
// handshake toxics and forwarding, measured by bench/internal/proxybench.
type ProxyResults struct {
	Run
	Rows []proxybench.Row `json:"rows"`
}

// measureProxy runs the proxy part and returns the writer of proxy.md and
// proxy.json.
func measureProxy(o Options) (writer, error) {
	r := &ProxyResults{}
	err := runSteps([]step{{"proxy", "proxy", func() (err error) {
		r.Rows, err = proxybench.Run(o.Short, progress)
		// The toxiproxy API client's keep-alive connections outlive
		// the servers they went to.
		http.DefaultClient.CloseIdleConnections()
		return err
	}}}, nil)
	return func(run Run) (string, string, error) {
		r.Run = run
		md, err := writeReport(run.Options.Out, "proxy.md", "proxy.json", r, writeProxyReport)
		return md, "proxy.md,proxy.json", err
	}, err
}

// writeProxyReport writes proxy.md: the machine, then proxybench's report.
func writeProxyReport(w io.Writer, r *ProxyResults) error {
	var b strings.Builder
	reportMachine(&b, "synhold benchmark: handshake-proxy", r.Run, nil)
	b.WriteString(proxybench.Report(r.Rows))
	reportDescriptors(&b, r.Descriptors)
	_, err := io.WriteString(w, b.String())
	return err
}
