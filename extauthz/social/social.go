package social

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Options configure the social method for every tenant.
type Options struct {
	// Sealer opens the tenants' sealed client secrets. Required when a
	// method has a secret.
	Sealer *seal.Sealer
	// HTTPClient redeems codes and asks userinfo. It should come from
	// idpclient.New; nil means idpclient.New with AllowLoopbackHTTP.
	HTTPClient *http.Client
	// AllowLoopbackHTTP accepts http:// endpoints on loopback hosts
	// (--allow-loopback-http-idp).
	AllowLoopbackHTTP bool
	// Presets replaces Presets() (tests, GitHub Enterprise); nil means
	// Presets().
	Presets map[string]Provider
	// Log receives operational warnings (never tokens or secrets); nil
	// discards.
	Log *slog.Logger
}

// NewOpener returns the signin.Opener for methods of type "social". Opening
// a method does not touch the network.
func NewOpener(opts Options) signin.Opener {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = idpclient.New(idpclient.Options{AllowLoopbackHTTP: opts.AllowLoopbackHTTP})
	}
	if opts.Presets == nil {
		opts.Presets = Presets()
	}
	return signin.OpenerFor(Type, func(_ context.Context, c *Config, t *tenants.Tenant, index int, m tenants.Method) (signin.Method, error) {
		return c.open(opts, t, index, m)
	})
}

// Method is one tenant's social method entry. It is safe for concurrent
// use. Make one with NewOpener.
type Method struct {
	client   *http.Client
	log      *slog.Logger
	tenantID string
	tenant   string
	index    int
	provider Provider
	clientID string
	secret   string
	scopes   []string
	label    string
	// roles holds the method's role mapping: groupRoles (generic only) and
	// defaultRoles.
	roles tenants.RoleMapping
	// noMFA: the tenant requires MFA of its SSO methods and this one is not
	// exempt, so it signs no one in (signin.RequiresMFA).
	noMFA bool
}

var _ signin.RedirectMethod = (*Method)(nil)

// open makes the Method of entry m (index of tenant t), whose Config is c.
// An entry without a clientID is not offered (signin.ErrNotOffered). It
// does not touch the network.
func (c *Config) open(opts Options, t *tenants.Tenant, index int, m tenants.Method) (signin.Method, error) {
	if c.ClientID == "" {
		return nil, fmt.Errorf("clientID: none yet: %w", signin.ErrNotOffered)
	}
	var (
		p     Provider
		roles tenants.RoleMapping
	)
	switch c.Provider {
	case "", Generic:
		roles = m.Roles.Clone()
		p = Provider{
			AuthURL:            c.AuthURL,
			TokenURL:           c.TokenURL,
			UserinfoURL:        c.UserinfoURL,
			IDField:            c.IDField,
			EmailField:         c.EmailField,
			EmailVerifiedField: c.EmailVerifiedField,
			NameFields:         []string{"name", "preferred_username"},
			GroupsField:        cmp.Or(c.GroupsClaim, tenants.DefaultGroupsClaim),
		}
		if p.IDField == "" {
			p.IDField = "sub"
		}
		if p.EmailField == "" {
			p.EmailField = "email"
		}
		u, err := url.Parse(c.AuthURL)
		if err != nil || u.Host == "" {
			return nil, errors.New("authURL: must be an absolute https URL")
		}
		p.Key = u.Scheme + "://" + u.Host
		p.Label = "Sign in with " + u.Hostname()
	default:
		var ok bool
		if p, ok = opts.Presets[c.Provider]; !ok {
			return nil, fmt.Errorf("provider: unknown %q (want github, google, microsoft or generic)", c.Provider)
		}
		// A preset's accounts get defaultRoles only; no member of a
		// consumer provider's userinfo is a group the tenant manages.
		p.GroupsField = ""
		roles = tenants.RoleMapping{DefaultRoles: slices.Clone(m.Roles.DefaultRoles)}
	}
	policy := idpclient.Options{AllowLoopbackHTTP: opts.AllowLoopbackHTTP, AllowPrivateNetworks: true}
	for _, f := range []struct{ name, url string }{
		{"authURL", p.AuthURL}, {"tokenURL", p.TokenURL}, {"userinfoURL", p.UserinfoURL},
	} {
		if err := policy.CheckURL(f.url); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if p.EmailsURL != "" {
		if err := policy.CheckURL(p.EmailsURL); err != nil {
			return nil, fmt.Errorf("emails URL: %w", err)
		}
	}
	secret, err := signin.OpenClientSecret(opts.Sealer, m, c.ClientSecret, t.InternalID)
	if err != nil {
		return nil, err
	}
	scopes := slices.Clone(p.Scopes)
	for _, s := range c.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	label := m.Label
	if label == "" {
		label = p.Label
	}
	return &Method{
		client:   opts.HTTPClient,
		log:      opts.Log,
		tenantID: t.InternalID,
		tenant:   t.ID,
		index:    index,
		provider: p,
		clientID: c.ClientID,
		secret:   secret,
		scopes:   scopes,
		label:    label,
		roles:    roles,
		noMFA:    signin.RequiresMFA(c.RequireMFA, t),
	}, nil
}

// Type returns "social".
func (m *Method) Type() string { return Type }

// Label returns the method's label ("Sign in with GitHub" and the like).
func (m *Method) Label() string { return m.label }

// String names the method without its secret.
func (m *Method) String() string {
	return fmt.Sprintf("social method %d of tenant %s (%s)", m.index, m.tenant, m.provider.Key)
}

// Errors of Callback, for errors.Is in tests. Their text names the failed
// check, never the provider's own words.
var (
	errAttempt  = errors.New("attempt does not belong to this method")
	errSecrets  = errors.New("attempt lacks state or PKCE verifier")
	errProvider = errors.New("provider returned an error")
	errState    = errors.New("state mismatch")
	errNoMFA    = errors.New("the tenant's mfa: required and a social provider cannot show a second factor; requireMFA: false on the method exempts it")
	errIssParam = errors.New("iss response parameter mismatch (RFC 9207)")
	errNoCode   = errors.New("no authorization code")
	errExchange = errors.New("code exchange failed")
	errUserinfo = errors.New("userinfo failed")
	errNoID     = errors.New("userinfo has no usable account id")
)

func (m *Method) checkAttempt(a *signin.Attempt) error {
	if a == nil || a.TenantID != m.tenantID || a.Method != m.index {
		return errAttempt
	}
	if a.State == "" || a.PKCEVerifier == "" {
		return errSecrets
	}
	return nil
}

func (m *Method) config(a *signin.Attempt) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     m.clientID,
		ClientSecret: m.secret,
		Endpoint:     oauth2.Endpoint{AuthURL: m.provider.AuthURL, TokenURL: m.provider.TokenURL},
		RedirectURL:  a.Endpoint.URL(signin.PathCallback),
		Scopes:       m.scopes,
	}
}

// AuthURL returns the provider's authorization URL for the attempt: code
// flow with its state and S256 PKCE challenge, redirect URI
// <endpoint>/_auth/callback.
func (m *Method) AuthURL(ctx context.Context, a *signin.Attempt) (string, error) {
	if err := m.checkAttempt(a); err != nil {
		return "", fmt.Errorf("social auth url: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.PKCEVerifier)}
	if a.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", a.LoginHint))
	}
	return m.config(a).AuthCodeURL(a.State, opts...), nil
}

// Callback completes the attempt: it checks the response (error, state, iss
// when the provider's is known), redeems the code with the PKCE verifier,
// reads userinfo with the access token and returns the identity keyed on the
// provider's immutable account id. Emails are verified only as the package
// documentation says.
func (m *Method) Callback(ctx context.Context, a *signin.Attempt, r *http.Request) (signin.Identity, error) {
	id, err := m.callback(ctx, a, r)
	if err != nil {
		return signin.Identity{}, fmt.Errorf("social callback for tenant %s via %s: %w", m.tenant, m.provider.Key, err)
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
	// Before the code is redeemed: no account is made or touched.
	if m.noMFA {
		return signin.Identity{}, signin.MFAMissing(errNoMFA)
	}
	if iss, ok := q["iss"]; ok && m.provider.ResponseIssuer != "" {
		if len(iss) != 1 || iss[0] != m.provider.ResponseIssuer {
			return signin.Identity{}, errIssParam
		}
	}
	code := q["code"]
	if len(code) != 1 || code[0] == "" {
		return signin.Identity{}, errNoCode
	}
	cctx := context.WithValue(ctx, oauth2.HTTPClient, m.client)
	tok, err := m.config(a).Exchange(idpclient.WithKind(cctx, idpclient.KindToken), code[0], oauth2.VerifierOption(a.PKCEVerifier))
	if err != nil {
		return signin.Identity{}, fmt.Errorf("%w: %w", errExchange, exchangeError(err))
	}
	body, err := m.get(ctx, m.provider.UserinfoURL, tok.AccessToken)
	if err != nil {
		return signin.Identity{}, fmt.Errorf("%w: %w", errUserinfo, err)
	}
	info, err := parseUserinfo(body, m.provider)
	if err != nil {
		return signin.Identity{}, err
	}
	if info.groupsErr != nil {
		m.log.Warn("social groups member ignored", "tenant", m.tenant, "provider", m.provider.Key,
			"field", m.provider.GroupsField, "err", info.groupsErr)
	}
	if m.provider.EmailsURL != "" {
		if email, ok := m.verifiedPrimaryEmail(ctx, tok.AccessToken); ok {
			info.email, info.verified = email, true
		}
	}
	return signin.Identity{
		Issuer:        m.provider.Key,
		Subject:       info.id,
		Email:         info.email,
		EmailVerified: info.verified && info.email != "",
		Name:          info.name,
		Roles:         m.roles.RolesFor(info.groups),
	}, nil
}

// get fetches a JSON document with the access token as a bearer token
// (RFC 6750 §2.1) and returns its body if the status is 200.
func (m *Method) get(ctx context.Context, u, accessToken string) ([]byte, error) {
	req, err := http.NewRequestWithContext(idpclient.WithKind(ctx, idpclient.KindUserInfo), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return body, nil
}

// verifiedPrimaryEmail asks the provider's email list (GitHub /user/emails)
// for the primary address and reports it only when it is verified. Any
// failure means no verified email, not a failed sign-in.
func (m *Method) verifiedPrimaryEmail(ctx context.Context, accessToken string) (string, bool) {
	body, err := m.get(ctx, m.provider.EmailsURL, accessToken)
	if err != nil {
		m.log.Warn("social email list unavailable; email left unverified", "tenant", m.tenant, "provider", m.provider.Key, "err", err)
		return "", false
	}
	var list []struct {
		Email    string          `json:"email"`
		Primary  json.RawMessage `json:"primary"`
		Verified json.RawMessage `json:"verified"`
	}
	if json.Unmarshal(body, &list) != nil {
		return "", false
	}
	for _, e := range list {
		if isTrue(e.Primary) && isTrue(e.Verified) && e.Email != "" {
			return e.Email, true
		}
	}
	return "", false
}

type userinfo struct {
	id, email, name string
	verified        bool
	// groups are the provider's groups; groupsErr says why a groups member
	// that is present was ignored.
	groups    []string
	groupsErr error
}

// maxIDLength bounds an account id; ids are keys, not documents.
const maxIDLength = 255

// integer is how a numeric id must look: digits only, so 1e3, 1000.0 and
// 1000 cannot name three accounts, or one account three ways.
var integer = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// parseUserinfo reads a userinfo response: a JSON object whose p.IDField
// member is a non-empty string or an integer, kept exactly as written. A
// p.GroupsField member of the wrong shape, or listing too many groups, gives
// no groups and a groupsErr, not a failed sign-in.
func parseUserinfo(body []byte, p Provider) (userinfo, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return userinfo{}, fmt.Errorf("%w: not a JSON object", errUserinfo)
	}
	id, ok := accountID(obj[p.IDField])
	if !ok {
		return userinfo{}, fmt.Errorf("%w: member %q", errNoID, p.IDField)
	}
	var u userinfo
	u.id = id
	if p.EmailField != "" {
		u.email = str(obj[p.EmailField])
	}
	if p.EmailVerifiedField != "" {
		u.verified = isTrue(obj[p.EmailVerifiedField])
	}
	for _, f := range p.NameFields {
		if u.name = str(obj[f]); u.name != "" {
			break
		}
	}
	if p.GroupsField != "" {
		u.groups, u.groupsErr = signin.ParseGroups(obj[p.GroupsField])
	}
	return u, nil
}

// accountID accepts a JSON string (non-empty, valid UTF-8 without control
// characters, at most maxIDLength bytes) or a JSON integer, returned digit
// for digit.
func accountID(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	var id string
	switch raw[0] {
	case '"':
		if json.Unmarshal(raw, &id) != nil {
			return "", false
		}
	default:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil || !integer.MatchString(n.String()) {
			return "", false
		}
		id = n.String()
	}
	if id == "" || len(id) > maxIDLength || !utf8.ValidString(id) {
		return "", false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return id, true
}

func str(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// isTrue reports whether raw is the JSON literal true, and nothing else.
func isTrue(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("true")) }

// errorCode returns a registered OAuth 2.0 error code (RFC 6749 §4.1.2.1,
// §5.2) as is, anything else as "unregistered", so a provider's words never
// reach a log or a page.
func errorCode(code string) string {
	switch code {
	case "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "invalid_client",
		"invalid_grant", "unsupported_grant_type":
		return code
	}
	return "unregistered error code"
}

// exchangeError keeps the token endpoint's status and registered error
// code, never its body.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("token endpoint status %d, error %s", status, errorCode(re.ErrorCode))
	}
	return err
}
