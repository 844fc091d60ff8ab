package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/tenantgate/tenantgate/tenants"
)

// ErrInvalid is wrapped by every verification failure: the token is
// malformed, forged, expired, revoked, or its tenant or key is gone. Callers
// treat it as "not signed in" (401). The wrapping text gives the reason but
// never repeats the token or anything read from it.
var ErrInvalid = errors.New("invalid session token")

// Reasons a token is refused. Each wraps ErrInvalid; they are unexported
// because callers act on ErrInvalid alone, and tests use them to prove that a
// forged token was refused for the reason it was built to trigger.
var (
	errNoSnapshot   = fmt.Errorf("%w: no tenant snapshot", ErrInvalid)
	errTooLarge     = fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxTokenSize)
	errMalformed    = fmt.Errorf("%w: malformed", ErrInvalid)
	errHeader       = fmt.Errorf("%w: header not allowed", ErrInvalid)
	errAlg          = fmt.Errorf("%w: algorithm not allowed", ErrInvalid)
	errUnknownKey   = fmt.Errorf("%w: unknown tenant or key", ErrInvalid)
	errSignature    = fmt.Errorf("%w: bad signature", ErrInvalid)
	errClaims       = fmt.Errorf("%w: claims not acceptable", ErrInvalid)
	errExpired      = fmt.Errorf("%w: expired", ErrInvalid)
	errNotYetValid  = fmt.Errorf("%w: not valid yet", ErrInvalid)
	errRevoked      = fmt.Errorf("%w: revoked", ErrInvalid)
	errKeyRetired   = fmt.Errorf("%w: tenant or key no longer present", ErrInvalid)
	errVerifyFailed = fmt.Errorf("%w: verification failed", ErrInvalid)
)

// Verifier defaults and limits.
const (
	// DefaultLeeway is the clock skew Verify tolerates when Leeway is zero.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps Leeway, so that a revocation kept for MaxTTL plus a
	// minute still outlives every token it covers.
	MaxLeeway = time.Minute
	// DefaultCacheSize is the number of verified tokens remembered when
	// CacheSize is zero.
	DefaultCacheSize = 100_000
)

// cacheShards spreads the verified-token cache over several locks: every
// request takes one, and a single lock would serialise all of them.
const cacheShards = 32

// pubKeyCacheSize bounds the parsed public keys a Verifier keeps.
const pubKeyCacheSize = 4096

// Verifier checks session tokens and remembers the ones it verified. The zero
// value is ready to use with the defaults; NewVerifier returns one too. A
// Verifier is safe for concurrent use; its fields must not change after the
// first Verify.
type Verifier struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, iat and nbf: DefaultLeeway
	// when zero, at most MaxLeeway.
	Leeway time.Duration
	// CacheSize is how many verified tokens are remembered: DefaultCacheSize
	// when zero, none when negative.
	CacheSize int

	once   sync.Once
	leeway time.Duration
	parser *jwt.Parser
	shards []*lru.Cache[[sha256.Size]byte, *verified]
	keys   *lru.Cache[pubKeyID, any]

	hits, misses, signatureChecks, failures atomic.Uint64
}

// NewVerifier returns a Verifier with the defaults: the wall clock,
// DefaultLeeway and DefaultCacheSize.
func NewVerifier() *Verifier { return &Verifier{} }

// verified is a cache entry: the claims of a token whose signature was good,
// and the key that proved it. A hit is only honoured while the tenant still
// holds exactly this key.
type verified struct {
	claims Claims
	tid    string
	kid    string
	public []byte
}

// pubKeyID names a parsed public key: the tenant, kid, algorithm and the
// exact PKIX bytes.
type pubKeyID struct{ tid, kid, alg, der string }

// Stats counts what a Verifier has done since it was made.
type Stats struct {
	// Hits are Verify calls answered from the cache (valid or not).
	Hits uint64
	// Misses are Verify calls that had to decode the token.
	Misses uint64
	// SignatureChecks are signature verifications performed.
	SignatureChecks uint64
	// Failures are Verify calls that returned an error.
	Failures uint64
}

// Stats returns the Verifier's counters.
func (v *Verifier) Stats() Stats {
	return Stats{
		Hits:            v.hits.Load(),
		Misses:          v.misses.Load(),
		SignatureChecks: v.signatureChecks.Load(),
		Failures:        v.failures.Load(),
	}
}

func (v *Verifier) init() {
	v.leeway = v.Leeway
	if v.leeway <= 0 {
		v.leeway = DefaultLeeway
	}
	v.leeway = min(v.leeway, MaxLeeway)
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{AlgEdDSA, AlgES256}),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	size := v.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		per := max(1, (size+cacheShards-1)/cacheShards)
		v.shards = make([]*lru.Cache[[sha256.Size]byte, *verified], cacheShards)
		for i := range v.shards {
			v.shards[i], _ = lru.New[[sha256.Size]byte, *verified](per) // per > 0: cannot fail
		}
	}
	v.keys, _ = lru.New[pubKeyID, any](pubKeyCacheSize)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks a session token against the tenants and revocations in snap
// and returns its claims, or an error wrapping ErrInvalid.
//
// It follows RFC 8725: the token must be at most MaxTokenSize bytes (checked
// before anything else), three base64url segments, with header typ
// TokenType, alg EdDSA or ES256, a kid, and no other header parameters (jku,
// x5u, jwk, x5c, crit and anything unknown are refused, so no key is ever
// taken from the token and nothing is fetched). The key is looked up only
// among the keys of the tenant whose internal id the token's "tid" claim
// names; its algorithm must match. After the signature: iss must be
// Issuer(tid), aud must contain Audience(tid), exp must be present and not
// past, iat present and not in the future, nbf (if any) not in the future
// (each with Leeway), exp after iat by at most MaxTTL, sub and sid
// non-empty, and the session must not be revoked in snap.
//
// Verify does NOT check that the token belongs to the tenant of the request:
// the returned Claims.TenantID is the token's own tenant, and the caller must
// compare it with the resolved tenant's InternalID (a mismatch is a 403,
// tenant_mismatch). Nor does it look at the tenant's status.
//
// A verified token is remembered by its SHA-256 hash (never the token
// itself). A later Verify of the same token skips decoding and the signature
// but still re-checks expiry, that the tenant still exists in snap with the
// same kid and identical public key bytes, and revocation. The returned
// Claims are the caller's to keep, except Roles, which must not be modified.
func (v *Verifier) Verify(snap *tenants.Snapshot, token string) (*Claims, error) {
	v.once.Do(v.init)
	c, err := v.verify(snap, token)
	if err != nil {
		v.failures.Add(1)
		return nil, err
	}
	return c, nil
}

func (v *Verifier) verify(snap *tenants.Snapshot, token string) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, errTooLarge
	}
	if snap == nil {
		return nil, errNoSnapshot
	}
	var sum [sha256.Size]byte
	var shard *lru.Cache[[sha256.Size]byte, *verified]
	if v.shards != nil {
		// The token is only read, never retained or modified: viewing its
		// bytes in place spares the hot path a copy.
		sum = sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
		shard = v.shards[sum[0]%cacheShards]
		if e, ok := shard.Get(sum); ok {
			v.hits.Add(1)
			c, err := v.recheck(snap, e)
			if err != nil {
				shard.Remove(sum)
				return nil, err
			}
			return c, nil
		}
	}
	v.misses.Add(1)
	e, err := v.verifyFresh(snap, token)
	if err != nil {
		return nil, err
	}
	if shard != nil {
		shard.Add(sum, e)
	}
	c := e.claims
	return &c, nil
}

// recheck is the cache-hit path: what may have changed since the token was
// verified is checked again; the signature cannot have changed.
func (v *Verifier) recheck(snap *tenants.Snapshot, e *verified) (*Claims, error) {
	if !v.now().Before(e.claims.Expires.Add(v.leeway)) {
		return nil, errExpired
	}
	t := snap.ByInternalID(e.tid)
	if t == nil {
		return nil, errKeyRetired
	}
	found := false
	for i := range t.Keys {
		if t.Keys[i].KID == e.kid {
			found = bytes.Equal(t.Keys[i].Public, e.public)
			break
		}
	}
	if !found {
		return nil, errKeyRetired
	}
	if snap.Revoked(e.tid, e.claims.Subject, e.claims.SID, e.claims.IssuedAt) {
		return nil, errRevoked
	}
	c := e.claims
	return &c, nil
}

// header is the protected header of a session token. Only these three
// parameters are allowed.
type header struct {
	Alg, Typ, Kid string
}

// forbiddenHeaders are parameters that would let a token choose its own key
// or add processing rules (RFC 7515 §4.1.2-4.1.6, §4.1.11); they are named in
// the error because they are attacks, not mistakes.
var forbiddenHeaders = [...]string{"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// parseHeader decodes and checks the header segment.
func parseHeader(seg string) (header, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return header{}, fmt.Errorf("%w: header is not base64url", errMalformed)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return header{}, fmt.Errorf("%w: header is not a JSON object", errMalformed)
	}
	for _, name := range forbiddenHeaders {
		if _, ok := m[name]; ok {
			return header{}, fmt.Errorf("%w: parameter %s", errHeader, name)
		}
	}
	var h header
	for name, val := range m {
		var dst *string
		switch name {
		case "alg":
			dst = &h.Alg
		case "typ":
			dst = &h.Typ
		case "kid":
			dst = &h.Kid
		default:
			return header{}, fmt.Errorf("%w: unknown parameter", errHeader)
		}
		if err := json.Unmarshal(val, dst); err != nil {
			return header{}, fmt.Errorf("%w: %s is not a string", errMalformed, name)
		}
	}
	if h.Typ != TokenType {
		return header{}, fmt.Errorf("%w: typ is not %s", errHeader, TokenType)
	}
	if h.Alg != AlgEdDSA && h.Alg != AlgES256 {
		return header{}, errAlg
	}
	if h.Kid == "" {
		return header{}, fmt.Errorf("%w: no kid", errUnknownKey)
	}
	return h, nil
}

// verifyFresh fully verifies a token that is not in the cache.
func (v *Verifier) verifyFresh(snap *tenants.Snapshot, token string) (*verified, error) {
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not three segments", errMalformed)
	}
	h, err := parseHeader(token[:strings.IndexByte(token, '.')])
	if err != nil {
		return nil, err
	}

	var (
		tc  tokenClaims
		key *tenants.SigningKey
	)
	keyFunc := func(tok *jwt.Token) (any, error) {
		// The claims are decoded but not yet authenticated: tid only says
		// where to look, and the key found there must then verify them.
		t := snap.ByInternalID(tc.TID)
		if t == nil {
			return nil, errUnknownKey
		}
		for i := range t.Keys {
			if t.Keys[i].KID == h.Kid {
				key = &t.Keys[i]
				break
			}
		}
		if key == nil {
			return nil, errUnknownKey
		}
		if key.Alg != h.Alg || tok.Method.Alg() != h.Alg {
			return nil, errAlg
		}
		pub, err := v.publicKey(tc.TID, key)
		if err != nil {
			return nil, fmt.Errorf("%w: stored key unusable", errUnknownKey)
		}
		v.signatureChecks.Add(1)
		return pub, nil
	}
	if _, err := v.parser.ParseWithClaims(token, &tc, keyFunc); err != nil {
		return nil, classify(err)
	}

	tid := tc.TID
	switch {
	case tc.Issuer != Issuer(tid):
		return nil, fmt.Errorf("%w: wrong issuer", errClaims)
	case !slices.Contains(tc.Audience, Audience(tid)):
		return nil, fmt.Errorf("%w: wrong audience", errClaims)
	case tc.IssuedAt == nil:
		return nil, fmt.Errorf("%w: no iat", errClaims)
	case !tc.ExpiresAt.After(tc.IssuedAt.Time):
		return nil, fmt.Errorf("%w: exp not after iat", errClaims)
	case tc.ExpiresAt.Sub(tc.IssuedAt.Time) > MaxTTL:
		return nil, fmt.Errorf("%w: lifetime over %s", errClaims, MaxTTL)
	case tc.Subject == "":
		return nil, fmt.Errorf("%w: no sub", errClaims)
	case tc.SID == "":
		return nil, fmt.Errorf("%w: no sid", errClaims)
	}
	c := Claims{
		Subject:  tc.Subject,
		TenantID: tid,
		Tenant:   tc.Tenant,
		Email:    tc.Email,
		Roles:    tc.Roles,
		SID:      tc.SID,
		Method:   tc.Method,
		IssuedAt: tc.IssuedAt.UTC(),
		Expires:  tc.ExpiresAt.UTC(),
	}
	if snap.Revoked(tid, c.Subject, c.SID, c.IssuedAt) {
		return nil, errRevoked
	}
	return &verified{claims: c, tid: tid, kid: key.KID, public: bytes.Clone(key.Public)}, nil
}

// classify maps a jwt library error to one of ours, keeping ours when the
// key function produced it.
func classify(err error) error {
	for _, ours := range []error{errUnknownKey, errAlg, errMalformed, errHeader} {
		if errors.Is(err, ours) {
			return err
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: no exp", errExpired)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errAlg
	}
	return errVerifyFailed
}

// publicKey returns the parsed public key k of tenant tid, parsing it once per
// exact (tenant, kid, algorithm, bytes).
func (v *Verifier) publicKey(tid string, k *tenants.SigningKey) (any, error) {
	id := pubKeyID{tid: tid, kid: k.KID, alg: k.Alg, der: string(k.Public)}
	if pub, ok := v.keys.Get(id); ok {
		return pub, nil
	}
	pub, err := parsePublicKey(k.Alg, k.Public)
	if err != nil {
		return nil, err
	}
	v.keys.Add(id, pub)
	return pub, nil
}
