package idpclient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr            string
		loopback, priv  bool
		wantAllowed     bool
		wantAllowedWith bool // with both AllowLoopbackHTTP and AllowPrivateNetworks
	}{
		{addr: "93.184.215.14", wantAllowed: true, wantAllowedWith: true},
		{addr: "2606:4700::1111", wantAllowed: true, wantAllowedWith: true},
		{addr: "169.254.169.254"},
		{addr: "169.254.170.2"},
		{addr: "169.254.1.1"},
		{addr: "::ffff:169.254.169.254"},
		{addr: "64:ff9b::a9fe:a9fe"}, // NAT64 of 169.254.169.254
		{addr: "fe80::1"},
		{addr: "fd00:ec2::254"},
		{addr: "100.100.100.200"},
		{addr: "168.63.129.16"},
		{addr: "0.0.0.0"},
		{addr: "::"},
		{addr: "0.1.2.3"},
		{addr: "224.0.0.1"},
		{addr: "ff02::1"},
		{addr: "255.255.255.255"},
		{addr: "2002:a9fe:a9fe::1"},
		{addr: "::a9fe:a9fe"},
		{addr: "127.0.0.1", wantAllowedWith: true},
		{addr: "127.1.2.3", wantAllowedWith: true},
		{addr: "::1", wantAllowedWith: true},
		{addr: "::ffff:127.0.0.1", wantAllowedWith: true},
		{addr: "10.1.2.3", wantAllowedWith: true},
		{addr: "172.16.0.1", wantAllowedWith: true},
		{addr: "192.168.1.1", wantAllowedWith: true},
		{addr: "100.64.0.1", wantAllowedWith: true},
		{addr: "fd12:3456::1", wantAllowedWith: true},
		{addr: "64:ff9b::a00:1", wantAllowedWith: true}, // NAT64 of 10.0.0.1
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.addr)
			err := Options{}.checkAddr(ip)
			if got := err == nil; got != tc.wantAllowed {
				t.Errorf("default policy: allowed = %v (%v), want %v", got, err, tc.wantAllowed)
			}
			if err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("error %v does not wrap ErrForbiddenAddress", err)
			}
			err = Options{AllowLoopbackHTTP: true, AllowPrivateNetworks: true}.checkAddr(ip)
			if got := err == nil; got != tc.wantAllowedWith {
				t.Errorf("permissive policy: allowed = %v (%v), want %v", got, err, tc.wantAllowedWith)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url      string
		loopback bool
		want     error
	}{
		{url: "https://idp.example/realms/acme"},
		{url: "http://idp.example/", want: ErrForbiddenScheme},
		{url: "http://idp.example/", loopback: true, want: ErrForbiddenScheme},
		{url: "http://127.0.0.1:8080/", want: ErrForbiddenScheme},
		{url: "http://127.0.0.1:8080/", loopback: true},
		{url: "http://localhost:8080/", loopback: true},
		{url: "http://[::1]:8080/", loopback: true},
		{url: "https://169.254.169.254/", loopback: true, want: ErrForbiddenAddress},
		{url: "https://[::ffff:a9fe:a9fe]/", want: ErrForbiddenAddress},
		{url: "https://10.0.0.1/", want: ErrForbiddenAddress},
		{url: "https://127.0.0.1/", want: ErrForbiddenAddress},
		{url: "https://user:pw@idp.example/", want: ErrForbiddenScheme},
		{url: "javascript:alert(1)", want: ErrForbiddenScheme},
		{url: "/relative", want: ErrForbiddenScheme},
		{url: "file:///etc/passwd", want: ErrForbiddenScheme},
		{url: "gopher://idp.example/", want: ErrForbiddenScheme},
		{url: "https://", want: ErrForbiddenScheme},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/loopback=%v", tc.url, tc.loopback), func(t *testing.T) {
			err := Options{AllowLoopbackHTTP: tc.loopback}.CheckURL(tc.url)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckURL = %v, want %v", err, tc.want)
			}
		})
	}
}

func okServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestRefusedConnections(t *testing.T) {
	plain := okServer(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(tlsSrv.Close)
	pool := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tlsPort := tlsSrv.Listener.Addr().(interface{ String() string }).String()
	_, port, _ := strings.Cut(tlsPort, ":")

	tests := []struct {
		name string
		opts Options
		url  string
		want error // nil: succeeds
	}{
		{name: "loopback http allowed", opts: Options{AllowLoopbackHTTP: true}, url: plain.URL},
		{name: "loopback http refused by default", url: plain.URL, want: ErrForbiddenScheme},
		{name: "loopback https allowed", opts: Options{AllowLoopbackHTTP: true, RootCAs: pool}, url: tlsSrv.URL},
		{name: "loopback https refused by default", opts: Options{RootCAs: pool}, url: tlsSrv.URL, want: ErrForbiddenAddress},
		// A host name is judged by the address it resolves to when dialled,
		// not by the URL.
		{name: "name resolving to loopback refused at dial", opts: Options{RootCAs: pool}, url: "https://localhost:" + port + "/", want: ErrForbiddenAddress},
		{name: "metadata over http", opts: Options{AllowLoopbackHTTP: true}, url: "http://169.254.169.254/latest/meta-data/", want: ErrForbiddenAddress},
		{name: "metadata over https", opts: Options{AllowLoopbackHTTP: true}, url: "https://169.254.169.254/", want: ErrForbiddenAddress},
		{name: "private network", url: "https://10.255.255.1/", want: ErrForbiddenAddress},
		{name: "ftp scheme", opts: Options{AllowLoopbackHTTP: true}, url: "ftp://127.0.0.1/", want: ErrForbiddenScheme},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := get(New(tc.opts), tc.url)
			if tc.want == nil {
				if err != nil || body != "ok" {
					t.Fatalf("get = %q, %v; want ok", body, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("get = %q, %v; want %v", body, err, tc.want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 1000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.URL.Query().Get("n"))
		if r.URL.Query().Has("len") {
			w.Header().Set("Content-Length", fmt.Sprint(n*100))
		}
		for range n {
			w.Write([]byte(strings.Repeat("x", 100)))
			if f, ok := w.(http.Flusher); ok {
				f.Flush() // no Content-Length: chunked
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := New(Options{AllowLoopbackHTTP: true, MaxBody: limit})
	tests := []struct {
		name  string
		query string
		want  error
	}{
		{name: "exactly the limit, chunked", query: "n=" + strings.Repeat("x", 10)},
		{name: "exactly the limit, announced", query: "len&n=" + strings.Repeat("x", 10)},
		{name: "over the limit, chunked", query: "n=" + strings.Repeat("x", 11), want: ErrBodyTooLarge},
		{name: "over the limit, announced", query: "len&n=" + strings.Repeat("x", 11), want: ErrBodyTooLarge},
		{name: "far over the limit", query: "n=" + strings.Repeat("x", 2000), want: ErrBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := get(c, srv.URL+"/?"+tc.query)
			if tc.want == nil {
				if err != nil || len(body) != limit {
					t.Fatalf("got %d bytes, %v; want %d bytes", len(body), err, limit)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %d bytes, %v; want %v", len(body), err, tc.want)
			}
			if len(body) > limit {
				t.Fatalf("read %d bytes past a %d limit", len(body), limit)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "ok")
		case "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		case "/hop":
			n := len(r.URL.Query().Get("n"))
			if n == 0 {
				http.Redirect(w, r, "/ok", http.StatusFound)
				return
			}
			http.Redirect(w, r, "/hop?n="+strings.Repeat("x", n-1), http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	to := func(u string) string { return srv.URL + "/to?u=" + url.QueryEscape(u) }
	tests := []struct {
		name string
		url  string
		want error
	}{
		{name: "same host", url: to("/ok")},
		{name: "three hops", url: srv.URL + "/hop?n=xx"},
		{name: "four hops", url: srv.URL + "/hop?n=xxx", want: ErrTooManyRedirects},
		{name: "to metadata", url: to("http://169.254.169.254/latest/meta-data/"), want: ErrForbiddenScheme},
		{name: "to metadata, https", url: to("https://169.254.169.254/"), want: ErrForbiddenAddress},
		{name: "to private network over http", url: to("http://10.0.0.1/"), want: ErrForbiddenScheme},
		{name: "to a file", url: to("file:///etc/passwd"), want: ErrForbiddenScheme},
	}
	c := New(Options{AllowLoopbackHTTP: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := get(c, tc.url)
			if tc.want == nil {
				if err != nil || body != "ok" {
					t.Fatalf("get = %q, %v; want ok", body, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("get = %q, %v; want %v", body, err, tc.want)
			}
		})
	}
}

func TestHTTPSToHTTPRedirectRefused(t *testing.T) {
	plain := okServer(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL, http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	pool := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	_, err := get(New(Options{AllowLoopbackHTTP: true, RootCAs: pool}), tlsSrv.URL)
	if !errors.Is(err, ErrForbiddenScheme) {
		t.Fatalf("https -> http redirect: err = %v, want ErrForbiddenScheme", err)
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	start := time.Now()
	_, err := get(New(Options{AllowLoopbackHTTP: true, Timeout: 100 * time.Millisecond}), srv.URL)
	if err == nil {
		t.Fatal("a hanging IdP did not time out")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timed out after %v, want about 100ms", d)
	}
}

// TestPlainHTTPNamesTheFlag: a plain-http IdP URL refused because
// --allow-loopback-http-idp is off says so, whether it is refused before
// the request (CheckURL, as OIDC discovery is) or by the client itself (as
// a SAML metadata fetch is): the log line names the fix.
func TestPlainHTTPNamesTheFlag(t *testing.T) {
	plain := okServer(t)
	const flag = "--allow-loopback-http-idp"
	if err := (Options{}).CheckURL(plain.URL); !errors.Is(err, ErrForbiddenScheme) || !strings.Contains(err.Error(), flag) {
		t.Errorf("CheckURL(%s) = %v; want ErrForbiddenScheme naming %s", plain.URL, err, flag)
	}
	_, err := get(New(Options{}), plain.URL)
	if !errors.Is(err, ErrForbiddenScheme) || !strings.Contains(err.Error(), flag) {
		t.Errorf("get %s = %v; want ErrForbiddenScheme naming %s", plain.URL, err, flag)
	}
}
