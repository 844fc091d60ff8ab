package oidc

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// DefaultRefreshInterval is how old a cached discovery document may grow
// before a background refresh.
const DefaultRefreshInterval = time.Hour

// Options configure the oidc method for every tenant.
type Options struct {
	// Sealer opens the tenants' sealed client secrets. Required.
	Sealer *seal.Sealer
	// HTTPClient fetches discovery, keys, tokens and userinfo. It should come
	// from idpclient.New; nil means idpclient.New with AllowLoopbackHTTP.
	HTTPClient *http.Client
	// AllowLoopbackHTTP accepts http:// issuers and endpoints on loopback
	// hosts (--allow-loopback-http-idp). It does not loosen HTTPClient,
	// which must be built with the same setting.
	AllowLoopbackHTTP bool
	// Now is the clock for token expiry and cache ages; nil means
	// time.Now.
	Now func() time.Time
	// Log receives operational warnings (never tokens or secrets); nil
	// discards.
	Log *slog.Logger
	// RefreshInterval is how often discovery documents are refreshed in the
	// background; zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
}

// NewOpener returns the signin.Opener for methods of type "oidc". The opener
// shares one discovery cache between all tenants, keyed by issuer. Opening
// a method does not touch the network: discovery runs at first use.
func NewOpener(opts Options) signin.Opener {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = idpclient.New(idpclient.Options{AllowLoopbackHTTP: opts.AllowLoopbackHTTP})
	}
	cache := &discoveryCache{
		client: opts.HTTPClient,
		// Browser-facing endpoints are reached by the browser, not by us:
		// check the scheme and refuse metadata/link-local literals, but
		// allow intranet addresses.
		policy:   idpclient.Options{AllowLoopbackHTTP: opts.AllowLoopbackHTTP, AllowPrivateNetworks: true},
		now:      opts.Now,
		log:      opts.Log,
		interval: opts.RefreshInterval,
		entries:  make(map[string]*discoveryEntry),
	}
	return signin.OpenerFor(Type, func(_ context.Context, c *Config, t *tenants.Tenant, index int, m tenants.Method) (signin.Method, error) {
		return c.open(opts, cache, t, index, m)
	})
}

// Method is one tenant's oidc method entry, ready to sign people in. It is
// safe for concurrent use. Make one with NewOpener.
type Method struct {
	cache    *discoveryCache
	now      func() time.Time
	log      *slog.Logger
	tenantID string // internal id
	tenant   string // slug, for logs
	index    int
	issuer   string
	clientID string
	secret   string
	scopes   []string
	label    string
	// groupsClaim names the claim holding the groups; roles maps them.
	groupsClaim string
	roles       tenants.RoleMapping
	// prompt is sent with every authentication request when set.
	prompt string
	// mfa, when set, is the provider's MFA the method requires.
	mfa *mfaPolicy
}

var (
	_ signin.RedirectMethod = (*Method)(nil)
	_ signin.LogoutMethod   = (*Method)(nil)
)

// open makes the Method of entry m (index of tenant t), whose Config is c.
// It does not touch the network.
func (c *Config) open(opts Options, cache *discoveryCache, t *tenants.Tenant, index int, m tenants.Method) (signin.Method, error) {
	if c.ClientID == "" {
		return nil, errors.New("clientID: required")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.Host == "" {
		// OIDC Discovery §2: https, no query or fragment.
		return nil, errors.New("issuer: must be an absolute https URL without query or fragment")
	}
	policy := idpclient.Options{AllowLoopbackHTTP: opts.AllowLoopbackHTTP, AllowPrivateNetworks: true}
	if err := policy.CheckURL(c.Issuer); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	secret, err := signin.OpenClientSecret(opts.Sealer, m, c.ClientSecret, t.InternalID)
	if err != nil {
		return nil, err
	}
	label := m.Label
	if label == "" {
		label = "Sign in with " + u.Hostname()
	}
	scopes := []string{gooidc.ScopeOpenID, "email", "profile"}
	for _, s := range c.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return &Method{
		cache:       cache,
		now:         opts.Now,
		log:         opts.Log,
		tenantID:    t.InternalID,
		tenant:      t.ID,
		index:       index,
		issuer:      c.Issuer,
		clientID:    c.ClientID,
		secret:      secret,
		scopes:      scopes,
		label:       label,
		groupsClaim: cmp.Or(c.GroupsClaim, tenants.DefaultGroupsClaim),
		roles:       m.Roles.Clone(),
		prompt:      c.Prompt,
		mfa:         newMFAPolicy(c, t),
	}, nil
}

// Type returns "oidc".
func (m *Method) Type() string { return Type }

// Label returns the method's label, by default "Sign in with <issuer host>".
func (m *Method) Label() string { return m.label }

// String names the method without its secret.
func (m *Method) String() string {
	return fmt.Sprintf("oidc method %d of tenant %s (issuer %s)", m.index, m.tenant, m.issuer)
}

// Errors of Callback, for errors.Is in tests. Their text names the failed
// check; it never carries the provider's own words.
var (
	errAttempt       = errors.New("attempt does not belong to this method")
	errProvider      = errors.New("provider returned an error")
	errState         = errors.New("state mismatch")
	errIssParam      = errors.New("iss response parameter mismatch (RFC 9207)")
	errIssParamGone  = errors.New("iss response parameter missing though the provider advertises it (RFC 9207)")
	errNoCode        = errors.New("no authorization code")
	errExchange      = errors.New("code exchange failed")
	errNoIDToken     = errors.New("token response has no id_token")
	errIDToken       = errors.New("id token invalid")
	errNonce         = errors.New("id token nonce mismatch")
	errAzp           = errors.New("id token azp is not this client")
	errClaims        = errors.New("id token claims invalid")
	errUserinfo      = errors.New("userinfo failed")
	errUserinfoSub   = errors.New("userinfo sub differs from the id token's")
	errAttemptSecret = errors.New("attempt lacks state, nonce or PKCE verifier")
)

func (m *Method) checkAttempt(a *signin.Attempt) error {
	if a == nil || a.TenantID != m.tenantID || a.Method != m.index {
		return errAttempt
	}
	if a.State == "" || a.Nonce == "" || a.PKCEVerifier == "" {
		return errAttemptSecret
	}
	return nil
}

func (m *Method) config(d *discovery, a *signin.Attempt) *oauth2.Config {
	ep := d.provider.Endpoint()
	return &oauth2.Config{
		ClientID:     m.clientID,
		ClientSecret: m.secret,
		Endpoint:     oauth2.Endpoint{AuthURL: d.authURL, TokenURL: ep.TokenURL},
		RedirectURL:  a.Endpoint.URL(signin.PathCallback),
		Scopes:       m.scopes,
	}
}

// AuthURL returns the provider's authorization URL for the attempt: code
// flow with the attempt's state, nonce and S256 PKCE challenge, the
// redirect URI <endpoint>/_auth/callback, the attempt's login_hint and the
// method's prompt when set, and acr_values when the method requires MFA
// and lists acceptedACR. It fetches discovery on first use.
func (m *Method) AuthURL(ctx context.Context, a *signin.Attempt) (string, error) {
	if err := m.checkAttempt(a); err != nil {
		return "", fmt.Errorf("oidc auth url: %w", err)
	}
	d, err := m.cache.get(ctx, m.issuer)
	if err != nil {
		return "", fmt.Errorf("oidc auth url: %w", err)
	}
	opts := []oauth2.AuthCodeOption{
		gooidc.Nonce(a.Nonce),
		oauth2.S256ChallengeOption(a.PKCEVerifier),
	}
	if a.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", a.LoginHint))
	}
	if m.prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", m.prompt))
	}
	// OIDC Core §3.1.2.1: acr_values, in order of preference. Voluntary
	// (not an essential claim): a provider that cannot meet it still
	// answers, and confirm refuses the sign-in with a page that says why.
	if m.mfa != nil && len(m.mfa.acr) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(m.mfa.acr, " ")))
	}
	return m.config(d, a).AuthCodeURL(a.State, opts...), nil
}

// Callback completes the attempt from the provider's redirect to
// /_auth/callback: it checks the response (error, state, RFC 9207 iss),
// redeems the code with the PKCE verifier, verifies the ID token (signature,
// iss, aud, exp, nonce, azp, at_hash) and maps its claims. It returns an
// identity only when every check holds. When the method requires the
// provider's MFA, an ID token that does not show it is a *signin.Refusal
// (signin.MFAMissing), and the identity's AMR records what it showed.
func (m *Method) Callback(ctx context.Context, a *signin.Attempt, r *http.Request) (signin.Identity, error) {
	id, err := m.callback(ctx, a, r)
	if err != nil {
		return signin.Identity{}, fmt.Errorf("oidc callback for tenant %s: %w", m.tenant, err)
	}
	return id, nil
}

func (m *Method) callback(ctx context.Context, a *signin.Attempt, r *http.Request) (signin.Identity, error) {
	if err := m.checkAttempt(a); err != nil {
		return signin.Identity{}, err
	}
	q := r.URL.Query()
	if q.Has("error") {
		return signin.Identity{}, fmt.Errorf("%w: %s", errProvider, errorCode(q.Get("error")))
	}
	if st := q["state"]; len(st) != 1 || subtle.ConstantTimeCompare([]byte(st[0]), []byte(a.State)) != 1 {
		return signin.Identity{}, errState
	}
	d, err := m.cache.get(ctx, m.issuer)
	if err != nil {
		return signin.Identity{}, err
	}
	// RFC 9207 §2.4: compare iss by simple string comparison.
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != m.issuer {
			return signin.Identity{}, errIssParam
		}
	} else if d.issParameter {
		return signin.Identity{}, errIssParamGone
	}
	code := q["code"]
	if len(code) != 1 || code[0] == "" {
		return signin.Identity{}, errNoCode
	}
	cctx := gooidc.ClientContext(ctx, m.cache.client)
	tok, err := m.config(d, a).Exchange(idpclient.WithKind(cctx, idpclient.KindToken), code[0], oauth2.VerifierOption(a.PKCEVerifier))
	if err != nil {
		return signin.Identity{}, fmt.Errorf("%w: %w", errExchange, exchangeError(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return signin.Identity{}, errNoIDToken
	}
	verifier := d.provider.Verifier(&gooidc.Config{ClientID: m.clientID, Now: m.now})
	idt, err := verifier.Verify(cctx, raw)
	if err != nil {
		return signin.Identity{}, fmt.Errorf("%w: %w", errIDToken, trimError(err))
	}
	// go-oidc does not check the nonce (OIDC Core §3.1.3.7 item 11).
	if idt.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(a.Nonce)) != 1 {
		return signin.Identity{}, errNonce
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return signin.Identity{}, fmt.Errorf("%w: at_hash: %w", errIDToken, err)
		}
	}
	c, err := parseClaims(idt)
	if err != nil {
		return signin.Identity{}, fmt.Errorf("%w: %w", errClaims, err)
	}
	// OIDC Core §3.1.3.7 items 4-5.
	azp := c.str("azp")
	if azp != "" && azp != m.clientID || azp == "" && len(idt.Audience) > 1 {
		return signin.Identity{}, errAzp
	}
	sub := idt.Subject
	if sub == "" || c.str("sub") != sub {
		return signin.Identity{}, fmt.Errorf("%w: no sub", errClaims)
	}
	// acr and amr are the ID token's (OIDC Core §2), never userinfo's.
	var amr []string
	if m.mfa != nil {
		if amr, err = m.mfa.confirm(c); err != nil {
			return signin.Identity{}, err
		}
	}
	if c.str("email") == "" && d.provider.UserInfoEndpoint() != "" {
		ui, err := d.provider.UserInfo(idpclient.WithKind(cctx, idpclient.KindUserInfo), oauth2.StaticTokenSource(tok))
		if err != nil {
			return signin.Identity{}, fmt.Errorf("%w: %w", errUserinfo, trimError(err))
		}
		// OIDC Core §5.3.4: the sub in the response must be the token's.
		if ui.Subject != sub {
			return signin.Identity{}, errUserinfoSub
		}
		var uc claims
		if err := ui.Claims(&uc.m); err != nil {
			return signin.Identity{}, fmt.Errorf("%w: %w", errUserinfo, err)
		}
		c = c.fillFrom(uc, m.groupsClaim)
	}
	groups, err := c.groups(m.groupsClaim)
	if err != nil {
		m.log.Warn("oidc groups claim ignored", "tenant", m.tenant, "issuer", m.issuer, "claim", m.groupsClaim, "err", err)
	}
	name := c.str("name")
	if name == "" {
		name = c.str("preferred_username")
	}
	return signin.Identity{
		Issuer:        m.issuer,
		Subject:       sub,
		Email:         c.str("email"),
		EmailVerified: c.isTrue("email_verified"),
		Name:          name,
		Roles:         m.roles.RolesFor(groups),
		IDTokenHint:   raw,
		AMR:           amr,
	}, nil
}

// LogoutURL returns the provider's end_session_endpoint (OIDC RP-Initiated
// Logout 1.0 §2) with id_token_hint, client_id and post_logout_redirect_uri,
// or "" when discovery names none.
func (m *Method) LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirect string) (string, error) {
	d, err := m.cache.get(ctx, m.issuer)
	if err != nil {
		return "", fmt.Errorf("oidc logout url for tenant %s: %w", m.tenant, err)
	}
	if d.endSession == "" {
		return "", nil
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return "", fmt.Errorf("oidc logout url for tenant %s: %w", m.tenant, err)
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", m.clientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// errorCode returns a registered OAuth 2.0 / OIDC error code (RFC 6749
// §4.1.2.1, OIDC Core §3.1.2.6) as is, and anything else as "unregistered",
// so what a provider writes never reaches a log or a page.
func errorCode(code string) string {
	switch code {
	case "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "interaction_required",
		"login_required", "account_selection_required", "consent_required", "invalid_request_uri",
		"invalid_request_object", "request_not_supported", "request_uri_not_supported",
		"registration_not_supported", "invalid_client", "invalid_grant", "unsupported_grant_type":
		return code
	}
	return "unregistered error code"
}

// exchangeError keeps the token endpoint's registered error code and HTTP
// status but drops its body.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("token endpoint status %d, error %s", status, errorCode(re.ErrorCode))
	}
	return trimError(err)
}
