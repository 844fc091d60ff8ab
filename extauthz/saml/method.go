package saml

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// DefaultLabel is the sign-in button text when the method sets none.
const DefaultLabel = "Sign in with SAML SSO"

// DefaultEmailAttribute names the attribute holding the email when the
// method sets no emailAttribute. (The groups attribute defaults to
// tenants.DefaultGroupsClaim, as every method's does.)
const DefaultEmailAttribute = "email"

// maxCachedEndpoints bounds the per-endpoint ServiceProvider cache of one
// tenant. A tenant has a handful of hosts; past the bound the cache starts
// over rather than grow.
const maxCachedEndpoints = 64

// ReplayCache remembers the IDs of assertions already used, so a captured
// response cannot sign anyone in twice (SAML Profiles §4.1.4.5). The store
// implements it durably, so a replay is refused across restarts and
// replicas.
type ReplayCache interface {
	// UseAssertionID records id as used for the tenant until expires. It
	// returns an error wrapping ErrReplay (or the store's own replay
	// sentinel) when id was already recorded and has not expired, and any
	// other error when it cannot tell; HandleResponse refuses the response
	// on every error.
	UseAssertionID(ctx context.Context, tenantInternalID, id string, expires time.Time) error
}

// ErrReplay is what a ReplayCache returns for an assertion ID it has seen.
// It stands in until tenants exports its own sentinel; HandleResponse
// refuses on any error from the cache, whichever sentinel it wraps.
var ErrReplay = errors.New("saml assertion already used")

// ErrInvalidResponse is wrapped by every refusal of HandleResponse: the
// response is malformed, unsigned, not for this tenant, expired, replayed or
// otherwise unacceptable. The handler answers 400 and shows a generic
// sign-in failure; the wrapped detail is for the log only.
var ErrInvalidResponse = errors.New("invalid saml response")

// Options are what every SAML method shares. cmd fills them once.
type Options struct {
	// Sealer opens the tenants' SP keys. Required.
	Sealer *seal.Sealer
	// HTTPClient fetches IdP metadata from idpMetadataURL. It must be the
	// safe client (no private or link-local addresses, timeouts); required
	// only for tenants that use idpMetadataURL.
	HTTPClient *http.Client
	// Replay records used assertion IDs. Required.
	Replay ReplayCache
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives refusals and metadata refresh failures; nil discards.
	Log *slog.Logger
}

// Method is one tenant's SAML sign-in method. It is safe for concurrent
// use.
type Method struct {
	tenantID string // internal id
	index    int
	label    string

	key  *rsa.PrivateKey
	cert *x509.Certificate
	idp  *idpSource

	emailAttribute    string
	groupsAttribute   string
	roles             tenants.RoleMapping
	allowIDPInitiated bool
	nameID            nameIDRule
	// mfa, when set, is the provider's MFA the method requires.
	mfa *mfaPolicy

	replay ReplayCache
	now    func() time.Time
	log    *slog.Logger

	mu  sync.Mutex
	sps map[signin.Endpoint]spEntry
}

type spEntry struct {
	idp *idpMetadata
	sp  *saml.ServiceProvider
}

var _ signin.SAMLMethod = (*Method)(nil)

// NewOpener returns the signin.Opener for type: saml methods. The opener
// opens the tenant's SP key, and parses the IdP metadata from
// idpMetadataXML or fetches it from idpMetadataURL (with ctx and
// opts.HTTPClient). It fails when the options lack a Sealer or Replay, the
// method is not saml, the tenant has no SAMLKey, the key does not open, or
// the metadata cannot be had or is unusable.
func NewOpener(opts Options) signin.Opener {
	return signin.OpenerFor(Type, func(ctx context.Context, c *Config, t *tenants.Tenant, index int, m tenants.Method) (signin.Method, error) {
		return c.open(ctx, opts, t, index, m)
	})
}

// open makes the Method of entry mc (index of tenant t), whose Config is c.
func (c *Config) open(ctx context.Context, opts Options, t *tenants.Tenant, index int, mc tenants.Method) (signin.Method, error) {
	if opts.Sealer == nil {
		return nil, errors.New("no sealer")
	}
	if opts.Replay == nil {
		return nil, errors.New("no replay cache")
	}
	key, cert, err := openSPKey(opts.Sealer, t.SAMLKey, t.InternalID)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := &idpSource{now: now, log: log}
	switch {
	case c.IDPMetadataXML != "" && c.IDPMetadataURL != "":
		return nil, errors.New("both idpMetadataXML and idpMetadataURL are set")
	case c.IDPMetadataXML != "":
		md, err := parseIDPMetadata([]byte(strings.TrimSpace(c.IDPMetadataXML)))
		if err != nil {
			return nil, err
		}
		md.fetched = now()
		src.current.Store(md)
	case c.IDPMetadataURL != "":
		if opts.HTTPClient == nil {
			return nil, errors.New("idpMetadataURL needs an HTTP client")
		}
		src.url, src.client = c.IDPMetadataURL, opts.HTTPClient
		md, err := src.fetch(ctx)
		if err != nil {
			return nil, err
		}
		src.current.Store(md)
	default:
		return nil, errors.New("neither idpMetadataXML nor idpMetadataURL is set")
	}
	format, ok := nameIDFormatURI(c.NameIDFormat)
	if !ok {
		return nil, fmt.Errorf("nameIDFormat %q is not one of persistent, emailAddress, unspecified, transient", c.NameIDFormat)
	}
	if format == transientNameIDFormat && c.SubjectAttribute == "" {
		return nil, errors.New("nameIDFormat transient needs subjectAttribute")
	}
	m := &Method{
		tenantID:          t.InternalID,
		index:             index,
		label:             mc.Label,
		key:               key,
		cert:              cert,
		idp:               src,
		emailAttribute:    cmp.Or(c.EmailAttribute, DefaultEmailAttribute),
		groupsAttribute:   cmp.Or(c.GroupsClaim, tenants.DefaultGroupsClaim),
		roles:             mc.Roles.Clone(),
		allowIDPInitiated: c.AllowIDPInitiated,
		nameID:            nameIDRule{format: format, subjectAttribute: c.SubjectAttribute},
		mfa:               newMFAPolicy(c, t),
		replay:            opts.Replay,
		now:               now,
		log:               log,
		sps:               make(map[signin.Endpoint]spEntry),
	}
	if m.label == "" {
		m.label = DefaultLabel
	}
	return m, nil
}

// Type returns "saml".
func (m *Method) Type() string { return Type }

// Label returns the method's label, or DefaultLabel.
func (m *Method) Label() string { return m.label }

// EntityID returns this tenant's SP entity id at endpoint e: the URL of its
// SP metadata.
func EntityID(e signin.Endpoint) string { return e.URL(signin.PathSAMLMetadata) }

// ACSURL returns this tenant's assertion consumer service URL at endpoint
// e.
func ACSURL(e signin.Endpoint) string { return e.URL(signin.PathSAMLACS) }

// serviceProvider returns the crewjam ServiceProvider of this tenant at e,
// built once per endpoint and IdP metadata version.
func (m *Method) serviceProvider(e signin.Endpoint) (*saml.ServiceProvider, *idpMetadata, error) {
	idp := m.idp.get()
	m.mu.Lock()
	defer m.mu.Unlock()
	if ent, ok := m.sps[e]; ok && ent.idp == idp {
		return ent.sp, idp, nil
	}
	metaURL, err := url.Parse(EntityID(e))
	if err != nil || metaURL.Scheme == "" || metaURL.Host == "" {
		return nil, nil, fmt.Errorf("endpoint %q is not an absolute url", e.Origin)
	}
	acsURL, err := url.Parse(ACSURL(e))
	if err != nil {
		return nil, nil, fmt.Errorf("endpoint %q: %w", e.Origin, err)
	}
	sp := &saml.ServiceProvider{
		EntityID:          metaURL.String(),
		Key:               m.key,
		Certificate:       m.cert,
		MetadataURL:       *metaURL,
		AcsURL:            *acsURL,
		IDPMetadata:       idp.descriptor,
		AuthnNameIDFormat: saml.NameIDFormat(m.nameID.format),
		SignatureMethod:   dsig.RSASHA256SignatureMethod,
		AllowIDPInitiated: false, // never consulted: responses are validated here
	}
	if len(m.sps) >= maxCachedEndpoints {
		clear(m.sps)
	}
	m.sps[e] = spEntry{idp: idp, sp: sp}
	return sp, idp, nil
}

// Metadata returns this tenant's SP metadata for endpoint e (SAML Metadata
// §2.4.4): entity id and ACS URL for e's host, the signing certificate,
// AuthnRequestsSigned and WantAssertionsSigned true, the HTTP-POST ACS
// binding only. It publishes no encryption key (encrypted assertions are
// refused), and the one NameIDFormat the method accepts (nameIDFormat,
// persistent by default), valid until the SP certificate expires.
func (m *Method) Metadata(e signin.Endpoint) ([]byte, error) {
	sp, _, err := m.serviceProvider(e)
	if err != nil {
		return nil, fmt.Errorf("saml metadata: %w", err)
	}
	ed := sp.Metadata()
	// validUntil is the certificate's end, not crewjam's two days: the
	// metadata changes only with the key, and an IdP that honours a short
	// validUntil would stop trusting a copy an operator imported once.
	ed.ValidUntil = m.cert.NotAfter.UTC()
	for i := range ed.SPSSODescriptors {
		d := &ed.SPSSODescriptors[i]
		d.ValidUntil = nil
		var keys []saml.KeyDescriptor
		for _, k := range d.KeyDescriptors {
			if k.Use == "signing" {
				keys = append(keys, k)
			}
		}
		d.KeyDescriptors = keys
		var acs []saml.IndexedEndpoint
		for _, a := range d.AssertionConsumerServices {
			if a.Binding == saml.HTTPPostBinding {
				acs = append(acs, a)
			}
		}
		d.AssertionConsumerServices = acs
		d.NameIDFormats = []saml.NameIDFormat{saml.NameIDFormat(m.nameID.format)}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(ed); err != nil {
		return nil, fmt.Errorf("saml metadata: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// AuthnRequestURL returns the IdP's HTTP-Redirect SingleSignOnService URL
// carrying a signed (RSA-SHA256) AuthnRequest for a's endpoint, with
// RelayState = a.ID, and the request's ID, which the attempt must remember
// as SAMLRequestID (SAML Bindings §3.4). Its NameIDPolicy has
// AllowCreate="true" and the method's NameID format (none for unspecified:
// SAML core §3.4.1.1, the IdP then chooses). A method that requires MFA
// and lists acceptedAuthnContext asks for those classes
// (RequestedAuthnContext, Comparison exact).
func (m *Method) AuthnRequestURL(ctx context.Context, a *signin.Attempt) (string, string, error) {
	if a == nil || a.ID == "" {
		return "", "", errors.New("saml authn request: no attempt")
	}
	if a.TenantID != m.tenantID {
		return "", "", errors.New("saml authn request: attempt is for another tenant")
	}
	sp, idp, err := m.serviceProvider(a.Endpoint)
	if err != nil {
		return "", "", fmt.Errorf("saml authn request: %w", err)
	}
	req, err := sp.MakeAuthenticationRequest(idp.ssoURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", "", fmt.Errorf("saml authn request: %w", err)
	}
	req.IssueInstant = m.now().UTC()
	allowCreate := true
	req.NameIDPolicy = &saml.NameIDPolicy{AllowCreate: &allowCreate}
	if f := m.nameID.format; f != unspecifiedNameIDFormat {
		req.NameIDPolicy.Format = &f
	}
	var u *url.URL
	if m.mfa != nil && m.mfa.request {
		el := req.Element()
		m.mfa.requestedAuthnContext(el)
		u, err = redirectURL(el, req.Destination, url.QueryEscape(a.ID), sp)
	} else {
		u, err = req.Redirect(url.QueryEscape(a.ID), sp)
	}
	if err != nil {
		return "", "", fmt.Errorf("saml authn request: %w", err)
	}
	return u.String(), req.ID, nil
}
