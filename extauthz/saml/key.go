package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// spKeyBits is the SP key size. 2048-bit RSA is what every IdP accepts for
// signed AuthnRequests.
const spKeyBits = 2048

// spCertLifetime is how long the self-signed SP certificate is valid. IdPs
// pin the certificate from the SP metadata, so a short one would break
// sign-in when it lapses; the key is rotated by replacing tenants.SAMLKey.
const spCertLifetime = 10 * 365 * 24 * time.Hour

// KeyContext is the sealing context of a tenant's SAML SP private key.
func KeyContext(tenantInternalID string) string { return "saml-key:" + tenantInternalID }

// NewSPKey makes a tenant's SAML service-provider key pair: an RSA-2048 key
// and a self-signed certificate (CN = the tenant's internal id, valid from
// now for about ten years). The private key is returned as PKCS #8 sealed
// with s under KeyContext(tenantInternalID), so it opens only for that
// tenant. Its shape matches tenants.ApplyOptions.NewSAMLKey once s is bound.
func NewSPKey(s *seal.Sealer, tenantInternalID string, now time.Time) (tenants.SAMLKey, error) {
	if tenantInternalID == "" {
		return tenants.SAMLKey{}, errors.New("new saml sp key: empty tenant internal id")
	}
	key, err := rsa.GenerateKey(rand.Reader, spKeyBits)
	if err != nil {
		return tenants.SAMLKey{}, fmt.Errorf("new saml sp key for %s: generate: %w", tenantInternalID, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tenants.SAMLKey{}, fmt.Errorf("new saml sp key for %s: serial: %w", tenantInternalID, err)
	}
	now = now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: tenantInternalID},
		NotBefore:             now.Add(-5 * time.Minute), // tolerate IdP clock skew
		NotAfter:              now.Add(spCertLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tenants.SAMLKey{}, fmt.Errorf("new saml sp key for %s: certificate: %w", tenantInternalID, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tenants.SAMLKey{}, fmt.Errorf("new saml sp key for %s: marshal: %w", tenantInternalID, err)
	}
	sealed, err := s.Seal(pkcs8, KeyContext(tenantInternalID))
	clear(pkcs8)
	if err != nil {
		return tenants.SAMLKey{}, fmt.Errorf("new saml sp key for %s: seal: %w", tenantInternalID, err)
	}
	return tenants.SAMLKey{Certificate: der, SealedPrivate: sealed, Created: now}, nil
}

// openSPKey opens a tenant's SP key and checks that the certificate is for
// that key.
func openSPKey(s *seal.Sealer, k *tenants.SAMLKey, tenantInternalID string) (*rsa.PrivateKey, *x509.Certificate, error) {
	if k == nil {
		return nil, nil, errors.New("tenant has no saml sp key")
	}
	cert, err := x509.ParseCertificate(k.Certificate)
	if err != nil {
		return nil, nil, fmt.Errorf("parse sp certificate: %w", err)
	}
	pkcs8, err := s.Open(k.SealedPrivate, KeyContext(tenantInternalID))
	if err != nil {
		return nil, nil, fmt.Errorf("open sp key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	clear(pkcs8)
	if err != nil {
		return nil, nil, fmt.Errorf("parse sp key: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("sp key is %T, want RSA", parsed)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("sp certificate does not match the sp key")
	}
	return key, cert, nil
}
