package oidc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
)

// retryAfterFailure is how long a failed discovery is remembered before the
// next sign-in tries again, so a dead IdP costs one timeout per interval,
// not one per request.
const retryAfterFailure = 5 * time.Second

// discovery is what one issuer's discovery document told us, checked.
type discovery struct {
	provider *gooidc.Provider
	// authURL is the authorization endpoint the browser is sent to.
	authURL string
	// endSession is the RP-initiated logout endpoint, or "".
	endSession string
	// issParameter: authorization_response_iss_parameter_supported (RFC 9207
	// §3).
	issParameter bool
	fetched      time.Time
}

// discoveryCache holds one entry per issuer.
type discoveryCache struct {
	client   *http.Client
	policy   idpclient.Options // for browser-facing URLs: scheme checks only
	now      func() time.Time
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	entries map[string]*discoveryEntry
}

type discoveryEntry struct {
	cur        atomic.Pointer[discovery]
	refreshing atomic.Bool

	mu        sync.Mutex // serialises foreground fetches
	lastErr   error
	lastErrAt time.Time
}

func (c *discoveryCache) entry(issuer string) *discoveryEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[issuer]
	if e == nil {
		e = &discoveryEntry{}
		c.entries[issuer] = e
	}
	return e
}

// get returns the issuer's discovery, fetching it with ctx on first use. A
// document older than the refresh interval is still returned, and one
// background refresh replaces it when it succeeds.
func (c *discoveryCache) get(ctx context.Context, issuer string) (*discovery, error) {
	e := c.entry(issuer)
	if d := e.cur.Load(); d != nil {
		if c.now().Sub(d.fetched) >= c.interval && e.refreshing.CompareAndSwap(false, true) {
			go c.refresh(issuer, e)
		}
		return d, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.cur.Load(); d != nil {
		return d, nil
	}
	if e.lastErr != nil && c.now().Sub(e.lastErrAt) < retryAfterFailure {
		return nil, e.lastErr
	}
	d, err := c.fetch(ctx, issuer)
	if err != nil {
		e.lastErr, e.lastErrAt = err, c.now()
		return nil, err
	}
	e.lastErr = nil
	e.cur.Store(d)
	return d, nil
}

func (c *discoveryCache) refresh(issuer string, e *discoveryEntry) {
	defer e.refreshing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*idpclient.DefaultTimeout)
	defer cancel()
	d, err := c.fetch(ctx, issuer)
	if err != nil {
		// Keep serving the document we have; the next sign-in after the
		// interval tries again.
		c.log.Warn("oidc discovery refresh failed; keeping the cached document", "issuer", issuer, "err", err)
		if old := e.cur.Load(); old != nil {
			retry := *old
			retry.fetched = c.now().Add(retryAfterFailure - c.interval)
			e.cur.CompareAndSwap(old, &retry)
		}
		return
	}
	e.cur.Store(d)
}

// fetch runs OIDC discovery (Discovery 1.0 §4) through the safe client and
// checks what the browser will be sent to.
func (c *discoveryCache) fetch(ctx context.Context, issuer string) (*discovery, error) {
	// The provider keeps the client for its JWKS fetches, which it makes
	// under a context of its own: those are KindJWKS.
	jwks := idpclient.DefaultKind(c.client, idpclient.KindJWKS)
	p, err := gooidc.NewProvider(gooidc.ClientContext(idpclient.WithKind(ctx, idpclient.KindDiscovery), jwks), issuer)
	if err != nil {
		// go-oidc includes the response body in some errors; do not keep
		// more than the first line's worth.
		return nil, fmt.Errorf("discover oidc issuer %s: %w", issuer, trimError(err))
	}
	var meta struct {
		EndSession   string `json:"end_session_endpoint"`
		IssParameter bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discover oidc issuer %s: read metadata: %w", issuer, err)
	}
	ep := p.Endpoint()
	if err := c.policy.CheckURL(ep.AuthURL); err != nil {
		return nil, fmt.Errorf("discover oidc issuer %s: authorization_endpoint: %w", issuer, err)
	}
	if err := c.policy.CheckURL(ep.TokenURL); err != nil {
		return nil, fmt.Errorf("discover oidc issuer %s: token_endpoint: %w", issuer, err)
	}
	if meta.EndSession != "" {
		if err := c.policy.CheckURL(meta.EndSession); err != nil {
			c.log.Warn("oidc end_session_endpoint refused; RP-initiated logout disabled", "issuer", issuer, "err", err)
			meta.EndSession = ""
		}
	}
	return &discovery{
		provider:     p,
		authURL:      ep.AuthURL,
		endSession:   meta.EndSession,
		issParameter: meta.IssParameter,
		fetched:      c.now(),
	}, nil
}

// trimError keeps errors short: go-oidc puts the whole non-200 response body
// in its message, and the IdP controls that body. The original error stays
// reachable through errors.Is and errors.As.
func trimError(err error) error {
	if len(err.Error()) <= maxErrorText {
		return err
	}
	return truncatedError{err}
}

const maxErrorText = 200

type truncatedError struct{ err error }

func (e truncatedError) Error() string { return e.err.Error()[:maxErrorText] + "…" }
func (e truncatedError) Unwrap() error { return e.err }
