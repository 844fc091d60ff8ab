package idpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults for Options.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 1 << 20
	// MaxRedirects is how many redirects a request may follow.
	MaxRedirects = 3
)

// Errors wrapped by the client's failures, for errors.Is.
var (
	// ErrForbiddenAddress: the connection would go to an address the policy
	// refuses (link-local, metadata, loopback or private when not allowed…).
	ErrForbiddenAddress = errors.New("idp address not allowed")
	// ErrForbiddenScheme: the URL is not https (or plain http to loopback
	// with AllowLoopbackHTTP), or is malformed.
	ErrForbiddenScheme = errors.New("idp url not allowed")
	// ErrBodyTooLarge: the response body is larger than Options.MaxBody.
	ErrBodyTooLarge = errors.New("idp response too large")
	// ErrTooManyRedirects: more than MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("too many idp redirects")
)

// Options configure New. The zero value is the production policy: https
// only, public addresses only, 10 s, 1 MiB.
type Options struct {
	// AllowLoopbackHTTP permits loopback addresses (127.0.0.0/8, ::1), over
	// https or plain http. For tests and local development only
	// (--allow-loopback-http-idp).
	AllowLoopbackHTTP bool
	// AllowPrivateNetworks permits private and shared address space
	// (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) over https, for
	// IdPs on an enterprise network. Metadata addresses stay refused.
	AllowPrivateNetworks bool
	// Timeout bounds a whole request, redirects and body included; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// MaxBody bounds every response body in bytes; zero means
	// DefaultMaxBody.
	MaxBody int64
	// RootCAs, when set, replaces the system roots (tests, private CAs).
	RootCAs *x509.CertPool
	// Observe, when set, is told of every HTTP exchange with an IdP (each
	// redirect hop too): its Kind (KindOf the request's context) and
	// result, ResultOK for a 2xx or 3xx status, ResultHTTPError for any
	// other status, ResultError when no response came (refused address,
	// timeout, TLS, oversized headers). It must not block.
	Observe func(kind Kind, result string)
}

// Results of an IdP exchange, for Options.Observe.
const (
	ResultOK        = "ok"
	ResultHTTPError = "http_error"
	ResultError     = "error"
)

// New returns an http.Client that enforces the package's policy (see the
// package documentation) on every request and every redirect hop. It never
// uses proxies from the environment. The client is safe for concurrent use
// and should be shared: it pools connections.
func New(opts Options) *http.Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	rt := &transport{
		https:   newTransport(opts, opts.checkAddr),
		maxBody: opts.MaxBody,
		observe: opts.Observe,
	}
	if opts.AllowLoopbackHTTP {
		// Plain http has its own transport whose dialer accepts nothing but
		// loopback, so http://name-that-resolves-elsewhere/ cannot slip out.
		rt.http = newTransport(opts, checkLoopbackOnly)
	}
	return &http.Client{
		Transport: rt,
		Timeout:   opts.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, MaxRedirects)
			}
			if req.URL.Scheme != "https" && via[len(via)-1].URL.Scheme == "https" {
				return fmt.Errorf("%w: redirect from https to %s", ErrForbiddenScheme, req.URL.Scheme)
			}
			return opts.CheckURL(req.URL.String())
		},
	}
}

func newTransport(opts Options, check func(netip.Addr) error) *http.Transport {
	d := &net.Dialer{
		Timeout: min(opts.Timeout, 5*time.Second),
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: dial %s: %w", ErrForbiddenAddress, address, err)
			}
			if err := check(ap.Addr()); err != nil {
				return fmt.Errorf("dial %s: %w", network, err)
			}
			return nil
		},
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:    min(opts.Timeout, 5*time.Second),
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
}

// CheckURL reports whether raw is an acceptable IdP URL under o's policy,
// before any connection: absolute, no user info, https (or http to a
// loopback host with AllowLoopbackHTTP), and, when the host is an IP
// literal, an allowed address. Host names are checked again, at dial time,
// by the client. Browser-facing IdP URLs (authorization and end-session
// endpoints) are checked with it too. Errors wrap ErrForbiddenScheme or
// ErrForbiddenAddress.
func (o Options) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: cannot parse", ErrForbiddenScheme)
	}
	if !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: not an absolute URL", ErrForbiddenScheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: user info in URL", ErrForbiddenScheme)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: no host", ErrForbiddenScheme)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !o.AllowLoopbackHTTP || !isLoopbackHost(host) {
			return fmt.Errorf("%w: http is allowed only to loopback with --allow-loopback-http-idp", ErrForbiddenScheme)
		}
	default:
		return fmt.Errorf("%w: scheme %q", ErrForbiddenScheme, u.Scheme)
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return o.checkAddr(ip)
	}
	return nil
}

// isLoopbackHost reports whether host names the loopback interface.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// Address classes; functions rather than package variables, so there is no
// mutable package state.
func metadataAddrs() []netip.Prefix {
	return mustPrefixes(
		"169.254.169.254/32", // AWS, GCP, Azure, OpenStack, Oracle
		"169.254.170.2/32",   // AWS ECS task metadata
		"fd00:ec2::254/128",  // AWS IMDS over IPv6
		"100.100.100.200/32", // Alibaba Cloud
		"168.63.129.16/32",   // Azure WireServer
	)
}

func reservedAddrs() []netip.Prefix {
	return mustPrefixes(
		"0.0.0.0/8",       // "this network"
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, and 255.255.255.255
		"::/8",            // IPv4-compatible and other legacy forms (after NAT64 below)
		"100::/64",        // discard
		"2001::/32",       // Teredo: embeds arbitrary IPv4
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: embeds arbitrary IPv4
		"64:ff9b:1::/48",  // local-use NAT64
	)
}

func privateAddrs() []netip.Prefix {
	return mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
}

func inAny(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkAddr applies the policy to one address to be connected to.
func (o Options) checkAddr(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	refuse := func(why string) error { return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, why) }
	switch {
	case !ip.IsValid():
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	case inAny(ip, metadataAddrs()):
		return refuse("a cloud metadata address")
	case ip.IsUnspecified():
		return refuse("unspecified")
	case ip.IsLoopback():
		if o.AllowLoopbackHTTP {
			return nil
		}
		return refuse("loopback (allowed only with --allow-loopback-http-idp)")
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return refuse("link-local")
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return refuse("multicast")
	}
	if ip.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
		// NAT64: judge the IPv4 address it stands for.
		b := ip.As16()
		return o.checkAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	if inAny(ip, reservedAddrs()) {
		return refuse("reserved")
	}
	if inAny(ip, privateAddrs()) && !o.AllowPrivateNetworks {
		return refuse("private (allowed only with AllowPrivateNetworks)")
	}
	return nil
}

// checkLoopbackOnly is the dial policy for plain http.
func checkLoopbackOnly(ip netip.Addr) error {
	if ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: plain http to %s: only loopback may be reached over http", ErrForbiddenAddress, ip)
}

// transport picks the policy transport by scheme and bounds response
// bodies.
type transport struct {
	https, http *http.Transport // http is nil unless loopback http is allowed
	maxBody     int64
	observe     func(Kind, string)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if t.observe != nil {
		result := ResultOK
		switch {
		case err != nil:
			result = ResultError
		case resp.StatusCode >= 400:
			result = ResultHTTPError
		}
		t.observe(KindOf(req.Context()), result)
	}
	return resp, err
}

func (t *transport) roundTrip(req *http.Request) (*http.Response, error) {
	var rt *http.Transport
	switch req.URL.Scheme {
	case "https":
		rt = t.https
	case "http":
		rt = t.http
	}
	if rt == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		if req.URL.Scheme == "http" {
			// The same words as CheckURL: whoever reads the log (a SAML
			// metadata fetch, say) learns the flag that would allow it.
			return nil, fmt.Errorf("%w: http is allowed only to loopback with --allow-loopback-http-idp", ErrForbiddenScheme)
		}
		return nil, fmt.Errorf("%w: scheme %q", ErrForbiddenScheme, req.URL.Scheme)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.maxBody {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrBodyTooLarge, resp.ContentLength, t.maxBody)
	}
	resp.Body = &limitedBody{rc: resp.Body, n: t.maxBody, limit: t.maxBody}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// pooled connections.
func (t *transport) CloseIdleConnections() {
	t.https.CloseIdleConnections()
	if t.http != nil {
		t.http.CloseIdleConnections()
	}
}

// limitedBody fails, rather than truncates, once more than limit bytes
// arrive (the http.MaxBytesReader pattern).
type limitedBody struct {
	rc       io.ReadCloser
	n, limit int64
	err      error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p))-1 > l.n {
		p = p[:l.n+1]
	}
	n, err := l.rc.Read(p)
	if int64(n) <= l.n {
		l.n -= int64(n)
		l.err = err
		return n, err
	}
	n = int(l.n)
	l.n = 0
	l.err = fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, l.limit)
	return n, l.err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
