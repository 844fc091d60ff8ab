package saml

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"

	"github.com/tenantgate/tenantgate/extauthz/idpclient"
)

const (
	// maxMetadataSize bounds IdP metadata, inline or fetched. Real metadata
	// is a few KiB; federation aggregates are not supported.
	maxMetadataSize = 1 << 20
	// metadataRefresh is how old fetched metadata may get before a use
	// starts a background refresh (the old copy keeps serving meanwhile, and
	// after a failed refresh).
	metadataRefresh = time.Hour
	// metadataFetchTimeout bounds one background refresh.
	metadataFetchTimeout = 30 * time.Second
)

// idpMetadata is what a tenant trusts about its IdP.
type idpMetadata struct {
	// entityID is the IdP's entity id: the Issuer of every response.
	entityID string
	// certs are the IdP's signing certificates; a response is accepted
	// when any of them verifies its signature.
	certs []*x509.Certificate
	// ssoURL is the SingleSignOnService location for the HTTP-Redirect
	// binding.
	ssoURL string
	// descriptor is the parsed metadata, for crewjam's ServiceProvider.
	descriptor *saml.EntityDescriptor
	fetched    time.Time
}

// parseIDPMetadata parses an IdP's SAML metadata (an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one IdP). It refuses a DOCTYPE, more
// than maxMetadataSize bytes, metadata without a signing certificate or
// without an HTTP-Redirect SingleSignOnService, and a SingleSignOnService
// that is not https (http only on a loopback host).
func parseIDPMetadata(data []byte) (*idpMetadata, error) {
	// Microsoft Entra ID serves its federation metadata with a UTF-8 byte
	// order mark, which encoding/xml treats as text before the root.
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if len(data) > maxMetadataSize {
		return nil, fmt.Errorf("idp metadata larger than %d bytes", maxMetadataSize)
	}
	if err := refuseDTD(data); err != nil {
		return nil, fmt.Errorf("idp metadata: %w", err)
	}
	if err := checkWellFormed(data); err != nil {
		return nil, fmt.Errorf("idp metadata: %w", err)
	}
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("idp metadata: %w", err)
	}
	if root.XMLName.Space != nsMetadata {
		return nil, fmt.Errorf("idp metadata: root element is {%s}%s, want an EntityDescriptor", root.XMLName.Space, root.XMLName.Local)
	}
	var ed *saml.EntityDescriptor
	switch root.XMLName.Local {
	case "EntityDescriptor":
		ed = new(saml.EntityDescriptor)
		if err := xml.Unmarshal(data, ed); err != nil {
			return nil, fmt.Errorf("idp metadata: %w", err)
		}
	case "EntitiesDescriptor":
		var eds saml.EntitiesDescriptor
		if err := xml.Unmarshal(data, &eds); err != nil {
			return nil, fmt.Errorf("idp metadata: %w", err)
		}
		for i := range eds.EntityDescriptors {
			if len(eds.EntityDescriptors[i].IDPSSODescriptors) == 0 {
				continue
			}
			if ed != nil {
				return nil, errors.New("idp metadata: more than one IdP in an EntitiesDescriptor")
			}
			ed = &eds.EntityDescriptors[i]
		}
		if ed == nil {
			return nil, errors.New("idp metadata: no IdP in the EntitiesDescriptor")
		}
	default:
		return nil, fmt.Errorf("idp metadata: root element is %s, want an EntityDescriptor", root.XMLName.Local)
	}
	m := &idpMetadata{entityID: strings.TrimSpace(ed.EntityID), descriptor: ed}
	if m.entityID == "" {
		return nil, errors.New("idp metadata: no entityID")
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return nil, errors.New("idp metadata: no IDPSSODescriptor")
	}
	for _, d := range ed.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return nil, fmt.Errorf("idp metadata: signing certificate: %w", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("idp metadata: signing certificate: %w", err)
				}
				m.certs = append(m.certs, cert)
			}
		}
		for _, s := range d.SingleSignOnServices {
			if s.Binding == saml.HTTPRedirectBinding && m.ssoURL == "" {
				m.ssoURL = s.Location
			}
		}
	}
	if len(m.certs) == 0 {
		return nil, errors.New("idp metadata: no signing certificate")
	}
	if m.ssoURL == "" {
		return nil, errors.New("idp metadata: no SingleSignOnService with the HTTP-Redirect binding")
	}
	if err := checkBrowserURL(m.ssoURL); err != nil {
		return nil, fmt.Errorf("idp metadata: SingleSignOnService: %w", err)
	}
	return m, nil
}

// checkBrowserURL accepts a URL the browser is sent to: absolute https, or
// http to a loopback host (development IdPs). Anything else (javascript:,
// data:, relative) is refused (CVE-2023-45683 class).
func checkBrowserURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid url: %w", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("url must be absolute, without userinfo or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("url must be https (http only for loopback)")
	default:
		return fmt.Errorf("url scheme %q not allowed", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// idpSource holds a tenant's current IdP metadata. Inline metadata never
// changes; fetched metadata is refreshed in the background when a use finds
// it older than metadataRefresh. A failed refresh keeps the old copy and is
// logged; there is no goroutine when nothing uses the method.
type idpSource struct {
	url        string // "" for inline metadata
	client     *http.Client
	now        func() time.Time
	log        *slog.Logger
	current    atomic.Pointer[idpMetadata]
	refreshing atomic.Bool
	// wg lets tests wait for a background refresh.
	wg sync.WaitGroup
}

// get returns the current metadata, starting a background refresh when it
// is stale.
func (s *idpSource) get() *idpMetadata {
	m := s.current.Load()
	if s.url != "" && s.now().Sub(m.fetched) >= metadataRefresh && s.refreshing.CompareAndSwap(false, true) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.refreshing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), metadataFetchTimeout)
			defer cancel()
			fresh, err := s.fetch(ctx)
			if err != nil {
				s.log.Warn("saml: refresh idp metadata failed; keeping the previous copy", "url", s.url, "err", err)
				return
			}
			s.current.Store(fresh)
		}()
	}
	return m
}

// fetch downloads and parses the metadata from s.url.
func (s *idpSource) fetch(ctx context.Context) (*idpMetadata, error) {
	req, err := http.NewRequestWithContext(idpclient.WithKind(ctx, idpclient.KindMetadata), http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch idp metadata: status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata: %w", err)
	}
	m, err := parseIDPMetadata(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata: %w", err)
	}
	m.fetched = s.now()
	return m, nil
}
