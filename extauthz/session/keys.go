package session

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// Signing algorithms (RFC 8037 §3.1 EdDSA with Ed25519; RFC 7518 §3.4 ES256).
// These two are the only ones VerifyFor accepts.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// SigningKeyContext is the sealing context of a tenant's private signing keys.
func SigningKeyContext(tenantInternalID string) string { return "signing-key:" + tenantInternalID }

// NewSigningKey makes a new Ed25519 signing key for the tenant with the given
// internal id. Its private half is sealed with context
// SigningKeyContext(tenantInternalID), so a key copied into another tenant's
// record does not open there. KID is the key's RFC 7638 JWK thumbprint.
func NewSigningKey(s *seal.Sealer, tenantInternalID string, now time.Time) (tenants.SigningKey, error) {
	return NewSigningKeyAlg(s, tenantInternalID, AlgEdDSA, now)
}

// NewSigningKeyAlg is NewSigningKey for a chosen algorithm, AlgEdDSA or
// AlgES256.
func NewSigningKeyAlg(s *seal.Sealer, tenantInternalID, alg string, now time.Time) (tenants.SigningKey, error) {
	if tenantInternalID == "" {
		return tenants.SigningKey{}, errors.New("new signing key: empty tenant internal id")
	}
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return tenants.SigningKey{}, fmt.Errorf("new signing key: unsupported algorithm %q (want %s or %s)", alg, AlgEdDSA, AlgES256)
	}
	if err != nil {
		return tenants.SigningKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return sealSigningKey(s, tenantInternalID, alg, priv, now)
}

// sealSigningKey builds the stored form of a private key.
func sealSigningKey(s *seal.Sealer, tenantInternalID, alg string, priv crypto.Signer, now time.Time) (tenants.SigningKey, error) {
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return tenants.SigningKey{}, fmt.Errorf("encode public key: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return tenants.SigningKey{}, fmt.Errorf("encode private key: %w", err)
	}
	sealed, err := s.Seal(pk, SigningKeyContext(tenantInternalID))
	clear(pk)
	if err != nil {
		return tenants.SigningKey{}, fmt.Errorf("seal private key: %w", err)
	}
	j, err := publicJWK(alg, priv.Public())
	if err != nil {
		return tenants.SigningKey{}, err
	}
	return tenants.SigningKey{KID: j.thumbprint(), Alg: alg, Public: pub, SealedPrivate: sealed, Created: now.UTC()}, nil
}

// parsePublicKey decodes a stored PKIX public key and checks that its type
// fits alg. It returns ed25519.PublicKey or *ecdsa.PublicKey on P-256.
func parsePublicKey(alg string, der []byte) (any, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	switch alg {
	case AlgEdDSA:
		if pk, ok := k.(ed25519.PublicKey); ok {
			return pk, nil
		}
	case AlgES256:
		if pk, ok := k.(*ecdsa.PublicKey); ok && pk.Curve == elliptic.P256() {
			return pk, nil
		}
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	return nil, fmt.Errorf("public key of type %T does not fit algorithm %s", k, alg)
}

// openPrivateKey unseals a tenant's private key and checks that it is the
// private half of k.Public with the type k.Alg needs.
func openPrivateKey(s *seal.Sealer, tenantInternalID string, k *tenants.SigningKey) (crypto.Signer, error) {
	pk, err := s.Open(k.SealedPrivate, SigningKeyContext(tenantInternalID))
	if err != nil {
		return nil, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(pk)
	clear(pk)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", priv)
	}
	pub, err := parsePublicKey(k.Alg, k.Public)
	if err != nil {
		return nil, err
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return nil, errors.New("private key does not match the public key")
	}
	return signer, nil
}

// jwk is one public key in a JWK Set (RFC 7517 §4, RFC 8037 §2, RFC 7518
// §6.2.1). Field order is the RFC 7638 thumbprint order for the required
// members.
type jwk struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// publicJWK returns the JWK of a public key, without kid, alg or use.
func publicJWK(alg string, pub crypto.PublicKey) (jwk, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if alg != AlgEdDSA {
			break
		}
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64(k)}, nil
	case *ecdsa.PublicKey:
		if alg != AlgES256 || k.Curve != elliptic.P256() {
			break
		}
		pt, err := k.Bytes() // 0x04 || x || y
		if err != nil {
			return jwk{}, fmt.Errorf("encode public key: %w", err)
		}
		return jwk{Kty: "EC", Crv: "P-256", X: b64(pt[1:33]), Y: b64(pt[33:])}, nil
	}
	return jwk{}, fmt.Errorf("public key of type %T does not fit algorithm %s", pub, alg)
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url): the hash of
// the required members in lexicographic order with no whitespace.
func (j jwk) thumbprint() string {
	req := jwk{Crv: j.Crv, Kty: j.Kty, X: j.X, Y: j.Y}
	b, _ := json.Marshal(req) // strings only: cannot fail
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// jwkSet is an RFC 7517 §5 JWK Set.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// JWKS returns the tenant's public signing keys that verify at now
// (SigningKey.Verifies: the current one and, after a rotation, those not
// yet retired) as an RFC 7517 JWK Set ({"keys":[…]}, newest first), each
// with kty, crv, x (and y for EC), kid, alg and use "sig". It contains
// public parts only. A key that cannot be decoded is an error naming the
// tenant and kid.
func JWKS(t *tenants.Tenant, now time.Time) ([]byte, error) {
	set := jwkSet{Keys: make([]jwk, 0, len(t.Keys))}
	for i := range t.Keys {
		k := &t.Keys[i]
		if !k.Verifies(now) {
			continue
		}
		pub, err := parsePublicKey(k.Alg, k.Public)
		if err != nil {
			return nil, fmt.Errorf("jwks of tenant %s: key %s: %w", t.ID, k.KID, err)
		}
		j, err := publicJWK(k.Alg, pub)
		if err != nil {
			return nil, fmt.Errorf("jwks of tenant %s: key %s: %w", t.ID, k.KID, err)
		}
		j.Kid, j.Alg, j.Use = k.KID, k.Alg, "sig"
		set.Keys = append(set.Keys, j)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode jwks of tenant %s: %w", t.ID, err)
	}
	return b, nil
}
