// Package echo is the upstream application of the demo and of the end-to-end
// tests: an HTTP handler that answers every request with a JSON description of
// what it received, so a person (or a test) can see exactly which headers made
// it through Envoy.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Request is what the echo handler saw of one request; it is the JSON body of
// every reply.
type Request struct {
	// Method is the request method.
	Method string `json:"method"`
	// Path is the request target as received (path and query, still escaped).
	Path string `json:"path"`
	// Host is the Host header (HTTP/1.1) or :authority (HTTP/2).
	Host string `json:"host"`
	// Headers holds every header but Host, keyed by lower-case name, with all
	// values in the order received: a header sent twice has two values.
	Headers map[string][]string `json:"headers"`
}

// Values returns every value received for the header name (any case).
func (r Request) Values(name string) []string {
	return r.Headers[strings.ToLower(name)]
}

// Handler is the echo upstream. The zero value is ready to use and safe for
// concurrent use; it counts the requests it served and remembers the most
// recent ones, so tests can prove an upstream was, or was never, called.
type Handler struct {
	// Pages, when set before first use, are HTML pages served as they are
	// at their exact paths (the query ignored), on every host: a test's
	// stand-in for what a tenant's app serves, such as a page with a form.
	// They are counted and remembered like every other request.
	Pages map[string]string

	mu   sync.Mutex
	hits int
	seen []Request // the last maxRemembered requests
}

// maxRemembered bounds the memory of a long-running demo upstream.
const maxRemembered = 1000

// ServeHTTP replies 200 with the JSON encoding of the Request it received.
// It never fails: the reply is built from data that always encodes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{
		Method:  r.Method,
		Path:    r.RequestURI,
		Host:    r.Host,
		Headers: make(map[string][]string, len(r.Header)),
	}
	for name, values := range r.Header {
		key := strings.ToLower(name)
		req.Headers[key] = append(req.Headers[key], values...)
	}
	h.mu.Lock()
	h.hits++
	if len(h.seen) == maxRemembered {
		h.seen = append(h.seen[:0], h.seen[1:]...)
	}
	h.seen = append(h.seen, req)
	h.mu.Unlock()

	w.Header().Set("Cache-Control", "no-store")
	if page, ok := h.Pages[r.URL.Path]; ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(req) // a write error means the client went away
}

// Hits returns how many requests the handler has served.
func (h *Handler) Hits() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits
}

// Requests returns a copy of the most recent requests served (up to 1000),
// oldest first.
func (h *Handler) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.seen...)
}
