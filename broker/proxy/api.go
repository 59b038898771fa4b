package proxy

import (
	"bytes"
	crand "crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// The API mirrors toxiproxy's api.go (v2.12.0) route for route: its error
// values are toxiproxy's own, its bodies are marshalled the same way, and
// errors go out through http.Error as there (a JSON body, text/plain).

// maxBody bounds a request body (toxiproxy has no bound; a megabyte is
// thousands of proxies). A body past it is a 400 "bad request body".
const maxBody = 1 << 20

// apiTimeout is how long a request may take before it is answered 503 with
// an empty body: toxiproxy's timeoutMiddleware.
const apiTimeout = 25 * time.Second

// apiPaths are the API's paths: another method on one of them is a 405.
var apiPaths = []string{"/reset", "/proxies", "/populate", "/proxies/{proxy}",
	"/proxies/{proxy}/toxics", "/proxies/{proxy}/toxics/{toxic}", "/version"}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// handle serves a route as toxiproxy's router serves a matched one: a
	// request id, browsers refused, the timeout, then the handler. A GET
	// route does not take HEAD (gorilla/mux matches the method exactly).
	handle := func(pattern string, h http.HandlerFunc) {
		method, _, ok := strings.Cut(pattern, " ")
		if !ok {
			method = "" // any method
		}
		limited := func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			h(w, r)
		}
		inner := requestID(refuseBrowsers(http.TimeoutHandler(http.HandlerFunc(limited), apiTimeout, "")))
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if method == http.MethodGet && r.Method != http.MethodGet {
				methodNotAllowed(w, r)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	handle("POST /reset", s.resetState)
	handle("GET /proxies", s.proxyIndex)
	handle("POST /proxies", s.proxyCreate)
	handle("POST /populate", s.populateHandler)
	handle("GET /proxies/{proxy}", s.withProxy(s.proxyShow))
	// POST is deprecated in toxiproxy 2.6+ for the two updates, but served.
	handle("POST /proxies/{proxy}", s.withProxy(s.proxyUpdate))
	handle("PATCH /proxies/{proxy}", s.withProxy(s.proxyUpdate))
	handle("DELETE /proxies/{proxy}", s.withProxy(s.proxyDelete))
	handle("GET /proxies/{proxy}/toxics", s.withProxy(s.toxicIndex))
	handle("POST /proxies/{proxy}/toxics", s.withProxy(s.toxicCreate))
	handle("GET /proxies/{proxy}/toxics/{toxic}", s.withProxy(s.toxicShow))
	handle("POST /proxies/{proxy}/toxics/{toxic}", s.withProxy(s.toxicUpdate))
	handle("PATCH /proxies/{proxy}/toxics/{toxic}", s.withProxy(s.toxicUpdate))
	handle("DELETE /proxies/{proxy}/toxics/{toxic}", s.withProxy(s.toxicDelete))
	handle("GET /version", s.version)
	for _, p := range apiPaths {
		mux.HandleFunc(p, methodNotAllowed)
	}
	if s.metrics != nil {
		// Any method, as toxiproxy's route has none.
		handle("/metrics", s.metrics.handler.ServeHTTP)
	}
	return mux
}

// methodNotAllowed answers a known path with another method: 405 with an
// empty body and no request id, as gorilla/mux answers for toxiproxy.
func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusMethodNotAllowed)
}

// requestIDHeader carries each answer's request id, as toxiproxy's (its
// hlog.RequestIDHandler: 20 characters of base32hex, lower case).
const requestIDHeader = "X-Toxiproxy-Request-Id"

var requestIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newRequestID is 12 bytes, as an xid: 4 of the time in seconds, 8 random,
// so that ids sort by time like toxiproxy's.
func newRequestID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(time.Now().Unix()))
	crand.Read(b[4:])
	return requestIDEncoding.EncodeToString(b[:])
}

// requestID sets a fresh request id on the answer.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(requestIDHeader, newRequestID())
		next.ServeHTTP(w, r)
	})
}

// refuseBrowsers answers 403 to what looks like a browser, as toxiproxy
// does, so that a web page cannot drive the API (cross-site requests).
func refuseBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
			http.Error(w, "User agent not allowed", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// joinError is toxiproxy's: wrapper's message, ": ", err's.
func joinError(err error, wrapper *toxiproxy.ApiError) error {
	if err == nil {
		return nil
	}
	return &toxiproxy.ApiError{Message: wrapper.Message + ": " + err.Error(), StatusCode: wrapper.StatusCode}
}

// apiError writes err as toxiproxy does: an *ApiError with its status, any
// other error as a 500. It reports whether there was an error.
func (s *Server) apiError(w http.ResponseWriter, err error) bool {
	if err == nil {
		return false
	}
	var obj *toxiproxy.ApiError
	if !errors.As(err, &obj) {
		s.log.Warn("API error", "err", err)
		obj = &toxiproxy.ApiError{Message: err.Error(), StatusCode: http.StatusInternalServerError}
	}
	data, _ := json.Marshal(obj)
	w.Header().Set("Content-Type", "application/json")
	http.Error(w, string(data), obj.StatusCode)
	return true
}

// writeJSON writes v as the body of a success.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if s.apiError(w, err) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

// readBody reads a request body whole (routes limit it to maxBody) for
// toxiproxy's decoder, which reads only its first JSON value. A body past
// the limit whose first maxBody bytes already hold that value, or a syntax
// error in it, is returned cut there, so that it is answered as toxiproxy
// answers it; one whose first value goes on past the limit is an error.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		var v json.RawMessage
		derr := json.NewDecoder(bytes.NewReader(b)).Decode(&v)
		if derr != nil && (derr == io.EOF || derr == io.ErrUnexpectedEOF) {
			return nil, joinError(err, toxiproxy.ErrBadRequestBody)
		}
		return b, nil
	}
	return b, joinError(err, toxiproxy.ErrBadRequestBody)
}

// withProxy serves a route of one proxy: h runs with s.mu held and the
// proxy the path names; a proxy that does not exist is toxiproxy's 404.
func (s *Server) withProxy(h func(http.ResponseWriter, *http.Request, *forwarder)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		f, ok := s.proxies[r.PathValue("proxy")]
		if !ok {
			s.apiError(w, toxiproxy.ErrProxyNotFound)
			return
		}
		h(w, r, f)
	}
}

func (s *Server) proxyIndex(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]proxyView, len(s.proxies))
	for n, f := range s.proxies {
		out[n] = f.view()
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) resetState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.proxies {
		if err := f.start(); err != toxiproxy.ErrProxyAlreadyStarted && s.apiError(w, err) {
			return
		}
		f.tp.Toxics.ResetToxics(r.Context())
		f.replan()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) proxyCreate(w http.ResponseWriter, r *http.Request) {
	// Named as toxiproxy's type, so that a decoding error reads the same.
	type Proxy proxyInput
	in := Proxy{Enabled: true}
	if err := json.NewDecoder(r.Body).Decode(&in); s.apiError(w, joinError(err, toxiproxy.ErrBadRequestBody)) {
		return
	}
	if in.Name == "" {
		s.apiError(w, joinError(errors.New("name"), toxiproxy.ErrMissingField))
		return
	}
	if in.Upstream == "" {
		s.apiError(w, joinError(errors.New("upstream"), toxiproxy.ErrMissingField))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.proxies[in.Name]; ok {
		s.apiError(w, toxiproxy.ErrProxyAlreadyExists)
		return
	}
	f := s.newForwarder(in.Name, in.Listen, in.Upstream)
	if in.Enabled {
		if s.apiError(w, f.start()) {
			return
		}
	}
	s.proxies[in.Name] = f
	s.writeJSON(w, http.StatusCreated, f.view())
}

func (s *Server) populateHandler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	proxies, err := s.populate(r.Body)
	var apiErr *toxiproxy.ApiError
	if err != nil && !errors.As(err, &apiErr) {
		apiErr = &toxiproxy.ApiError{Message: err.Error(), StatusCode: http.StatusInternalServerError}
	}
	var views []proxyView // null when empty, as toxiproxy answers
	for _, f := range proxies {
		views = append(views, f.view())
	}
	status := http.StatusCreated
	if apiErr != nil {
		status = apiErr.StatusCode
	}
	s.writeJSON(w, status, struct {
		*toxiproxy.ApiError `json:",omitempty"`
		Proxies             []proxyView `json:"proxies"`
	}{apiErr, views})
}

// populate creates or replaces the proxies in a JSON array, as toxiproxy's
// ProxyCollection.PopulateJson (2.12): every entry is checked before any is
// created; an existing proxy whose listen address resolves to the one it
// listens on and whose upstream is the same is kept as it is (toxics,
// connections, enabled or not); the first that fails to start ends it.
// s.mu is held.
func (s *Server) populate(r io.Reader) ([]*forwarder, error) {
	type Proxy proxyInput // as in proxyCreate
	var input []struct {
		Proxy
		Enabled *bool `json:"enabled"`
	}
	if err := json.NewDecoder(r).Decode(&input); err != nil {
		return nil, joinError(err, toxiproxy.ErrBadRequestBody)
	}
	for i, in := range input {
		if in.Name == "" {
			return nil, joinError(fmt.Errorf("name at proxy %d", i+1), toxiproxy.ErrMissingField)
		}
		if in.Upstream == "" {
			return nil, joinError(fmt.Errorf("upstream at proxy %d", i+1), toxiproxy.ErrMissingField)
		}
	}
	out := make([]*forwarder, 0, len(input))
	for _, in := range input {
		if old, ok := s.proxies[in.Name]; ok {
			differs, err := old.differs(in.Listen, in.Upstream)
			if err != nil {
				return out, err
			}
			if !differs {
				out = append(out, old)
				continue
			}
			old.stop()
		}
		f := s.newForwarder(in.Name, in.Listen, in.Upstream)
		if in.Enabled == nil || *in.Enabled {
			if err := f.start(); err != nil {
				return out, err
			}
		}
		s.proxies[in.Name] = f
		out = append(out, f)
	}
	return out, nil
}

func (s *Server) proxyShow(w http.ResponseWriter, r *http.Request, f *forwarder) {
	s.writeJSON(w, http.StatusOK, f.view())
}

func (s *Server) proxyUpdate(w http.ResponseWriter, r *http.Request, f *forwarder) {
	type Proxy proxyInput // as in proxyCreate
	in := Proxy{Listen: f.listen, Upstream: f.upstream, Enabled: f.enabled}
	if err := json.NewDecoder(r.Body).Decode(&in); s.apiError(w, joinError(err, toxiproxy.ErrBadRequestBody)) {
		return
	}
	if s.apiError(w, f.update(proxyInput(in))) {
		return
	}
	s.writeJSON(w, http.StatusOK, f.view())
}

func (s *Server) proxyDelete(w http.ResponseWriter, r *http.Request, f *forwarder) {
	f.stop()
	delete(s.proxies, f.name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) toxicIndex(w http.ResponseWriter, r *http.Request, f *forwarder) {
	s.writeJSON(w, http.StatusOK, f.tp.Toxics.GetToxicArray())
}

// toxicHead is what the proxy reads of a toxic's JSON before toxiproxy does.
type toxicHead struct {
	Type       string          `json:"type"`
	Toxicity   *float32        `json:"toxicity"`
	Attributes json.RawMessage `json:"attributes"`
}

func (s *Server) toxicCreate(w http.ResponseWriter, r *http.Request, f *forwarder) {
	body, err := readBody(r)
	if s.apiError(w, err) {
		return
	}
	if s.apiError(w, s.checkHandshake(body, nil)) {
		return
	}
	t, err := f.tp.Toxics.AddToxicJson(bytes.NewReader(body))
	if s.apiError(w, err) {
		return
	}
	if err := f.replan(); err != nil {
		f.tp.Toxics.RemoveToxic(r.Context(), t.Name)
		f.replan()
		err = fmt.Errorf("%s: %w", t.Type, err)
		if errors.Is(err, errors.ErrUnsupported) {
			err = &toxiproxy.ApiError{Message: err.Error(), StatusCode: http.StatusNotImplemented}
		}
		s.apiError(w, err)
		return
	}
	attrs := []any{"toxic", t.Name, "type", t.Type, "stream", t.Stream, "toxicity", t.Toxicity}
	if _, ok := t.Toxic.(handshakeToxic); ok {
		attrs = append(attrs, "strategy", s.support.strategy, "released_handshakes_complete", completes(s.support.strategy))
	}
	f.log.Info("toxic added", attrs...)
	s.writeJSON(w, http.StatusOK, t)
}

// checkHandshake checks the body of a toxic's create (cur nil) or update
// (cur the toxic as it is) before toxiproxy takes it. If it is a handshake
// toxic: that this host can run it, with the toxicity the body gives (else
// 1, or cur's), and that its attributes, decoded over cur's, make sense.
// Any other toxic, or a body that is not JSON, is left to toxiproxy.
func (s *Server) checkHandshake(body []byte, cur *toxics.ToxicWrapper) error {
	var head toxicHead
	if json.Unmarshal(body, &head) != nil {
		return nil
	}
	kind, toxicity := head.Type, float32(1)
	var proto toxics.Toxic
	if cur != nil {
		kind, toxicity, proto = cur.Type, cur.Toxicity, cur.Toxic
	} else {
		proto = toxics.New(&toxics.ToxicWrapper{Type: head.Type})
	}
	if _, ok := proto.(handshakeToxic); !ok {
		return nil
	}
	if head.Toxicity != nil {
		toxicity = *head.Toxicity
	}
	v := reflect.New(reflect.TypeOf(proto).Elem())
	if cur != nil {
		v.Elem().Set(reflect.ValueOf(cur.Toxic).Elem())
	}
	t := v.Interface().(handshakeToxic)
	if attrs := head.Attributes; len(attrs) > 0 && string(attrs) != "null" {
		if err := json.Unmarshal(attrs, t); err != nil {
			return joinError(err, toxiproxy.ErrBadRequestBody)
		}
	}
	if err := t.check(); err != nil {
		return joinError(err, toxiproxy.ErrBadRequestBody)
	}
	return s.support.check(kind, toxicity)
}

func (s *Server) toxicShow(w http.ResponseWriter, r *http.Request, f *forwarder) {
	t := f.tp.Toxics.GetToxic(r.PathValue("toxic"))
	if t == nil {
		s.apiError(w, toxiproxy.ErrToxicNotFound)
		return
	}
	s.writeJSON(w, http.StatusOK, t)
}

func (s *Server) toxicUpdate(w http.ResponseWriter, r *http.Request, f *forwarder) {
	body, err := readBody(r)
	if s.apiError(w, err) {
		return
	}
	name := r.PathValue("toxic")
	if cur := f.tp.Toxics.GetToxic(name); cur != nil && s.apiError(w, s.checkHandshake(body, cur)) {
		return
	}
	t, err := f.tp.Toxics.UpdateToxicJson(name, bytes.NewReader(body))
	if s.apiError(w, err) {
		return
	}
	f.replan()
	f.log.Info("toxic updated", "toxic", t.Name, "type", t.Type, "toxicity", t.Toxicity)
	s.writeJSON(w, http.StatusOK, t)
}

func (s *Server) toxicDelete(w http.ResponseWriter, r *http.Request, f *forwarder) {
	name := r.PathValue("toxic")
	if s.apiError(w, f.tp.Toxics.RemoveToxic(r.Context(), name)) {
		return
	}
	f.replan()
	f.log.Info("toxic removed", "toxic", name)
	w.WriteHeader(http.StatusNoContent)
}

// version answers toxiproxy's JSON, byte for byte (its format string, with
// the space and the newline).
func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	fmt.Fprintf(w, "{\"version\": %q}\n", Version)
}
