package session

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// ErrTenantSuspended is returned by Mint for a suspended tenant: a suspended
// tenant refuses every sign-in.
var ErrTenantSuspended = errors.New("tenant is suspended")

// signerCacheSize bounds how many unsealed private keys a Minter keeps.
const signerCacheSize = 4096

// Minter signs session tokens. seal.Sealer is required; the other fields have
// defaults. A Minter is safe for concurrent use; its fields must not change
// after the first Mint.
type Minter struct {
	// seal.Sealer opens the tenants' sealed private keys.
	Sealer *seal.Sealer
	// TTL is how long a session lasts: DefaultTTL when zero, at most MaxTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of session ids; nil means crypto/rand.
	Rand io.Reader

	once    sync.Once
	signers *lru.Cache[signerKey, *cachedSigner]
}

// signerKey names one private key of one tenant.
type signerKey struct{ tid, kid string }

// cachedSigner is an unsealed private key and the public key it was checked
// against, so a key replaced under the same kid is unsealed again.
type cachedSigner struct {
	public []byte
	signer crypto.Signer
}

// Mint signs a session for tenant t with t.Keys[0], the tenant's newest key
// (after a rotation, the new one: its kid is in the token's header).
// From c it takes Subject (required), Email, Roles (sorted and de-duplicated
// into a new slice), Method (required: password, oidc, saml or social) and
// SID (a fresh NewSID when empty); it sets TenantID and Tenant from t and
// IssuedAt and Expires from the clock and TTL, ignoring what c had there. It
// returns the token and the claims exactly as VerifyFor will report them.
//
// It fails for a tenant without an internal id or keys, a suspended tenant
// (ErrTenantSuspended), a private key that does not open under this master
// key for this tenant, and a token larger than MaxTokenSize.
func (m *Minter) Mint(t *tenants.Tenant, c Claims) (token string, minted Claims, err error) {
	if m.Sealer == nil {
		return "", Claims{}, errors.New("mint session: no sealer")
	}
	if t == nil || t.InternalID == "" {
		return "", Claims{}, errors.New("mint session: tenant has no internal id")
	}
	if t.Suspended() {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: %w", t.ID, ErrTenantSuspended)
	}
	if len(t.Keys) == 0 {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: tenant has no signing key", t.ID)
	}
	if c.Subject == "" {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: empty subject", t.ID)
	}
	if !validMethod(c.Method) {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: sign-in method %q is not password, oidc, saml or social", t.ID, c.Method)
	}
	if !validAMR(c.AMR) {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: amr %q holds an unknown or repeated reference", t.ID, c.AMR)
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > MaxTTL {
		return "", Claims{}, fmt.Errorf("mint session: ttl %s is not between 1s and %s", ttl, MaxTTL)
	}
	if c.SID == "" {
		if c.SID, err = NewSID(m.Rand); err != nil {
			return "", Claims{}, fmt.Errorf("mint session for tenant %s: %w", t.ID, err)
		}
	}
	key := &t.Keys[0]
	signer, err := m.signer(t.InternalID, key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: key %s: %w", t.ID, key.KID, err)
	}
	method := jwt.GetSigningMethod(key.Alg)
	if method == nil || (key.Alg != AlgEdDSA && key.Alg != AlgES256) {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: key %s: unsupported algorithm %q", t.ID, key.KID, key.Alg)
	}

	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	at := now()
	if !key.Verifies(at) {
		// Only a damaged record has a retired key first: a token signed
		// with it would not verify.
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: key %s retired at %s", t.ID, key.KID, key.RetireAt)
	}
	iat := at.UTC().Truncate(time.Second)
	exp := iat.Add(ttl).Truncate(time.Second)
	roles := slices.Compact(slices.Sorted(slices.Values(c.Roles)))
	minted = Claims{
		Subject:  c.Subject,
		TenantID: t.InternalID,
		Tenant:   t.ID,
		Email:    c.Email,
		Roles:    roles,
		SID:      c.SID,
		Method:   c.Method,
		AMR:      slices.Clone(c.AMR),
		IssuedAt: iat,
		Expires:  exp,
	}
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer(t.InternalID),
			Subject:   minted.Subject,
			Audience:  jwt.ClaimStrings{Audience(t.InternalID)},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(iat),
		},
		TID:    minted.TenantID,
		Tenant: minted.Tenant,
		Email:  minted.Email,
		Roles:  minted.Roles,
		SID:    minted.SID,
		Method: minted.Method,
		AMR:    minted.AMR,
	}
	tok := jwt.NewWithClaims(method, tc)
	tok.Header = map[string]any{"alg": key.Alg, "typ": TokenType, "kid": key.KID}
	token, err = tok.SignedString(signer)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign session for tenant %s: %w", t.ID, err)
	}
	if len(token) > MaxTokenSize {
		return "", Claims{}, fmt.Errorf("mint session for tenant %s: token is %d bytes, over the %d-byte limit (too many roles?)", t.ID, len(token), MaxTokenSize)
	}
	return token, minted, nil
}

// signer returns the unsealed private key k of tenant tid, unsealing it once
// and remembering it.
func (m *Minter) signer(tid string, k *tenants.SigningKey) (crypto.Signer, error) {
	m.once.Do(func() {
		m.signers, _ = lru.New[signerKey, *cachedSigner](signerCacheSize) // size is positive: cannot fail
	})
	ck := signerKey{tid: tid, kid: k.KID}
	if c, ok := m.signers.Get(ck); ok && bytes.Equal(c.public, k.Public) {
		return c.signer, nil
	}
	s, err := openPrivateKey(m.Sealer, tid, k)
	if err != nil {
		return nil, err
	}
	m.signers.Add(ck, &cachedSigner{public: bytes.Clone(k.Public), signer: s})
	return s, nil
}
