package test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/test/internal/stack"
)

// TestHarnessProxiesKeepEarlyAnswersWhole pins down the cause of the
// end-to-end suite's occasional "read body: unexpected EOF" on a POST (Envoy
// logging the response from tenantgate_http as UPE): the harness's own
// reverse proxies, not tenantgate, cut the response short. It replays, every
// time, the interleaving that a loaded machine produces now and then: the
// upstream answers before the proxy's transport has finished with the
// request body, the proxy starts writing that answer, and only then does the
// transport read the body again (stack.WholeBody says why).
func TestHarnessProxiesKeepEarlyAnswersWhole(t *testing.T) {
	upstream := &url.URL{Scheme: "http", Host: "upstream.invalid"}
	tests := []struct {
		name  string
		proxy func(http.RoundTripper) http.Handler
	}{
		{"recorder before tenantgate's HTTP port", func(rt http.RoundTripper) http.Handler {
			return (&stack.Recorder{}).Proxy(upstream, rt)
		}},
		{"TLS front before Envoy", func(rt http.RoundTripper) http.Handler {
			return frontProxy(upstream, rt)
		}},
	}
	const form = "email=alice%40evil.test&csrf=0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	// More than the 2 KiB Go's server buffers before it sends the headers,
	// so the first half alone starts the answer.
	page := strings.Repeat("<p>neutral sign-in page</p>\n", 400)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := &lateBodyTransport{page: page}
			srv := httptest.NewServer(tc.proxy(rt))
			defer srv.Close()

			resp, err := http.Post(srv.URL+"/_auth/login", "application/x-www-form-urlencoded", strings.NewReader(form))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != page {
				t.Fatalf("POST through the proxy: status %d, %d of %d bytes, read error %v; the upstream read the body: %v",
					resp.StatusCode, len(body), len(page), err, rt.bodyErr)
			}
			if rt.bodyErr != nil || rt.body != form {
				t.Errorf("the upstream received body %q (error %v), want %q", rt.body, rt.bodyErr, form)
			}
		})
	}
}

// lateBodyTransport is an upstream that answers a request from its headers
// alone and reads the request body once the proxy is already answering: the
// order in which http.Transport's two goroutines can run when the one that
// writes the request is descheduled between sending the body's declared
// bytes and its final read of it. A failed read of the body makes the rest
// of the response fail, as the Transport's closing its connection does.
type lateBodyTransport struct {
	page    string
	body    string
	bodyErr error
}

func (lt *lateBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	half := len(lt.page) / 2
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Length": {strconv.Itoa(len(lt.page))}},
		ContentLength: int64(len(lt.page)),
		Body: &sequenceReader{steps: []func() (string, error){
			func() (string, error) { return lt.page[:half], nil },
			// The proxy has written the first half: its server has sent the
			// headers and dealt with the request body its own way.
			func() (string, error) {
				b, err := io.ReadAll(req.Body)
				lt.body, lt.bodyErr = string(b), err
				if err != nil {
					return "", errors.Join(errors.New("connection to the upstream closed after a failed read of the request body"), err)
				}
				return lt.page[half:], nil
			},
		}},
		Request: req,
	}, nil
}

// sequenceReader returns what each step gives, one step per Read, then EOF.
type sequenceReader struct {
	steps   []func() (string, error)
	pending string
}

func (s *sequenceReader) Read(p []byte) (int, error) {
	for s.pending == "" {
		if len(s.steps) == 0 {
			return 0, io.EOF
		}
		next, err := s.steps[0]()
		s.steps = s.steps[1:]
		if err != nil {
			return 0, err
		}
		s.pending = next
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *sequenceReader) Close() error { return nil }
