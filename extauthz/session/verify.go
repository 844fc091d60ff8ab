package session

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
	errNoSnapshot  = fmt.Errorf("%w: no tenant snapshot", ErrInvalid)
	errTooLarge    = fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxTokenSize)
	errMalformed   = fmt.Errorf("%w: malformed", ErrInvalid)
	errHeader      = fmt.Errorf("%w: header not allowed", ErrInvalid)
	errAlg         = fmt.Errorf("%w: algorithm not allowed", ErrInvalid)
	errUnknownKey  = fmt.Errorf("%w: unknown tenant or key", ErrInvalid)
	errSignature   = fmt.Errorf("%w: bad signature", ErrInvalid)
	errClaims      = fmt.Errorf("%w: claims not acceptable", ErrInvalid)
	errExpired     = fmt.Errorf("%w: expired", ErrInvalid)
	errNotYetValid = fmt.Errorf("%w: not valid yet", ErrInvalid)
	errRevoked     = fmt.Errorf("%w: revoked", ErrInvalid)
	errNotMember   = fmt.Errorf("%w: no longer a member of its tenant", ErrInvalid)
	errKeyRetired  = fmt.Errorf("%w: tenant or key no longer present", ErrInvalid)
)

// Verifier defaults and limits.
const (
	// DefaultLeeway is the clock skew VerifyFor tolerates when Leeway is zero.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps Leeway: no Verifier accepts a token more than this
	// long after its exp. It is also how long past a token's exp a
	// revocation is kept (RevocationExpires), so the two cannot drift
	// apart: a signed-out token never works again within the leeway.
	MaxLeeway = time.Minute
	// DefaultCacheSize is the number of verified tokens remembered when
	// CacheSize is zero.
	DefaultCacheSize = 100_000
)

// revocationMargin is kept on top of MaxLeeway for the clocks of the
// process that prunes a revocation and the one that verifies, which may be
// different replicas, disagreeing a little.
const revocationMargin = time.Minute

// RevocationExpires is when a revocation covering sessions that expire at
// exp may be dropped: exp plus MaxLeeway (the longest any Verifier accepts a
// token past its exp) plus a margin for clock differences. Every revocation
// is written with this Expires (Claims.Revocation for one session).
func RevocationExpires(exp time.Time) time.Time { return exp.Add(MaxLeeway + revocationMargin) }

// Revocation is the revocation of this one session, from now on, kept until
// RevocationExpires(c.Expires).
func (c *Claims) Revocation(now time.Time) tenants.Revocation {
	return tenants.Revocation{
		Key:       tenants.SessionRevocationKey(c.SID),
		NotBefore: now,
		Expires:   RevocationExpires(c.Expires),
	}
}

// cacheShards spreads the verified-token cache over several locks: every
// request takes one, and a single lock would serialise all of them.
const cacheShards = 32

// maxProbation bounds the probation window: how many tokens seen once are
// remembered, claims and all, until their second use (see
// Verifier.CacheSize).
const maxProbation = 4096

// maxSeen bounds the seen-once filter: how many hashes of tokens verified
// once are remembered after they left probation (8 bytes each).
const maxSeen = 1 << 16

// pubKeyCacheSize bounds the parsed public keys a Verifier keeps.
const pubKeyCacheSize = 4096

// Verifier checks session tokens and remembers the ones it verified. The zero
// value is ready to use with the defaults; NewVerifier returns one too. A
// Verifier is safe for concurrent use; its fields must not change after the
// first VerifyFor.
type Verifier struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, iat and nbf: DefaultLeeway
	// when zero, at most MaxLeeway.
	Leeway time.Duration
	// CacheSize is how many verified tokens are remembered: DefaultCacheSize
	// when zero, none when negative. A token verified for the first time
	// waits in a probation window (CacheSize/8 slots, at most 4096) and
	// enters the cache on its second use, so that tokens presented only
	// once, such as a flood of one-time bearer tokens, neither push the
	// sessions in use out of the cache nor fill the heap. A token whose
	// second use comes after probation forgot it is verified again and then
	// cached, if a seen-once filter of hashes (CacheSize slots, at most 65536)
	// still remembers its first.
	CacheSize int

	once   sync.Once
	leeway time.Duration
	b64    *base64.Encoding
	shards []*lru.Cache[[sha256.Size]byte, *verified]
	// probation holds tokens verified once, each in the slot its hash
	// picks; a newer token in the same slot replaces it.
	probation []atomic.Pointer[verified]
	// seen holds a 64-bit tag of each token verified once, in the slot its
	// hash picks: a token whose tag is already there is being used again.
	seen []atomic.Uint64
	keys *lru.Cache[pubKeyID, any]

	hits, misses, signatureChecks, failures atomic.Uint64
}

// NewVerifier returns a Verifier with the defaults: the wall clock,
// DefaultLeeway and DefaultCacheSize.
func NewVerifier() *Verifier { return &Verifier{} }

// verified is a cache entry: the claims of a token whose signature was good,
// and the key that proved it. A hit is only honoured while the tenant still
// holds exactly this key.
type verified struct {
	sum    [sha256.Size]byte // the token's hash
	claims Claims
	tid    string
	kid    string
	public []byte
	// memo is the caller's (VerifyForMemo).
	memo Memo
}

// pubKeyID names a parsed public key: the tenant, kid, algorithm and the
// exact PKIX bytes.
type pubKeyID struct{ tid, kid, alg, der string }

// Stats counts what a Verifier has done since it was made.
type Stats struct {
	// Hits are VerifyFor calls answered from the cache (valid or not).
	Hits uint64
	// Misses are VerifyFor calls that had to decode the token.
	Misses uint64
	// SignatureChecks are signature verifications performed.
	SignatureChecks uint64
	// Failures are VerifyFor calls that refused an invalid token (a valid
	// token of another tenant is not counted).
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
	v.b64 = base64.RawURLEncoding.Strict()
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
		v.probation = make([]atomic.Pointer[verified], min(max(1, size/8), maxProbation))
		v.seen = make([]atomic.Uint64, min(size, maxSeen))
	}
	v.keys, _ = lru.New[pubKeyID, any](pubKeyCacheSize)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// ErrTenantMismatch is wrapped (with ErrInvalid) by VerifyFor for a token
// that would be valid but belongs to another tenant than the request's: a
// 403 tenant_mismatch, not a 401.
var ErrTenantMismatch = errors.New("session token belongs to another tenant")

// VerifyFor checks a session token against the tenants and revocations in
// snap, as verifyAny does, and that it was issued by and for tenant t (the
// tenant the request resolved to): its tid, and with it its iss and aud,
// name t.InternalID. It returns the claims only when both hold. A token that
// is valid but belongs to another tenant is an error wrapping ErrInvalid and
// ErrTenantMismatch; any other failure wraps ErrInvalid alone. A nil t is
// refused. There is no way to verify a token without naming the tenant it
// must belong to: the comparison cannot be forgotten.
//
// VerifyFor does not look at t's status: suspended tenants are the
// caller's business.
func (v *Verifier) VerifyFor(snap *tenants.Snapshot, t *tenants.Tenant, token string) (*Claims, error) {
	c, _, err := v.VerifyForMemo(snap, t, token)
	return c, err
}

// VerifyForMemo is VerifyFor that also returns the Memo kept with the
// token in the cache: non-nil only for a token answered from the cache
// proper (in use: its third use on, see CacheSize), nil for one verified
// now or still in probation, and always nil with an error. The Memo lives
// as long as the token's cache entry, and the entry is dropped when a
// recheck refuses the token.
func (v *Verifier) VerifyForMemo(snap *tenants.Snapshot, t *tenants.Tenant, token string) (*Claims, *Memo, error) {
	if t == nil {
		return nil, nil, fmt.Errorf("%w: no tenant to verify for", ErrInvalid)
	}
	c, e, err := v.verifyEntry(snap, token)
	if err != nil {
		return nil, nil, err
	}
	if c.TenantID != t.InternalID {
		return nil, nil, errTenantMismatch
	}
	if e == nil {
		return c, nil, nil
	}
	return c, &e.memo, nil
}

// Memo is a slot kept with one verified token in the Verifier's cache, for
// a caller to keep what it derives from the token's claims (extauthz keeps
// the OK answer's headers there). The Verifier never reads it. A value
// derived from anything that can change while the token stays cached (its
// roles, its tenant: the snapshot) must say which snapshot it was derived
// from, and the caller must check that before using it. A Memo is safe for
// concurrent use; a nil *Memo holds nothing and keeps nothing.
type Memo struct{ p atomic.Pointer[memoBox] }

type memoBox struct{ v any }

// Load returns the value last stored, or nil.
func (m *Memo) Load() any {
	if m == nil {
		return nil
	}
	if b := m.p.Load(); b != nil {
		return b.v
	}
	return nil
}

// Store replaces the value; on a nil Memo it does nothing.
func (m *Memo) Store(v any) {
	if m != nil {
		m.p.Store(&memoBox{v})
	}
}

// errTenantMismatch is VerifyFor's refusal of another tenant's valid token.
var errTenantMismatch = fmt.Errorf("%w: %w", ErrInvalid, ErrTenantMismatch)

// verifyAny checks a session token against the tenants and revocations in
// snap and returns its claims, or an error wrapping ErrInvalid.
//
// It follows RFC 8725: the token must be at most MaxTokenSize bytes (checked
// before anything else), exactly three segments of canonical unpadded
// base64url (no padding, no line breaks, no trailing bits set), with header
// typ TokenType, alg EdDSA or ES256, a kid, and no other header parameters
// (jku, x5u, jwk, x5c, crit and anything unknown are refused, so no key is
// ever taken from the token and nothing is fetched). Header and claims must
// each be one JSON object whose members are named exactly (no case folding,
// no escapes in names), appear at most once and have the right type: the
// claims are only iss, sub, aud, exp, iat, nbf, tid, tenant, email, roles,
// sid and method, with exp, iat and nbf in whole seconds; null, unknown
// claims, invalid UTF-8 and trailing data are refused. The key is looked up
// only among the keys of the tenant whose internal id the token's "tid"
// claim names, and only a key that has not retired (SigningKey.Verifies:
// after a rotation, an older key verifies until its RetireAt); its
// algorithm must match. After the signature: exp must be
// present and not past, iat not in the future, nbf (if any) not in the
// future (each with Leeway), iss must be Issuer(tid), aud must contain
// Audience(tid), iat must be present, exp after iat by at most MaxTTL, sub
// and sid non-empty, the session must not be revoked in snap, and its user
// must still be a member of its tenant in snap (Snapshot.Membership).
//
// The returned Claims.Roles are the user's roles in the tenant as snap has
// them now, not the roles the token carries (those are only what the person
// held at sign-in): a role taken away or given takes effect on the next
// request, and a member removed is refused like a revoked session.
//
// verifyAny does NOT check that the token belongs to the tenant of the
// request: the returned Claims.TenantID is the token's own tenant. That is
// why it is unexported; VerifyFor is the only way in.
//
// A verified token is remembered by its SHA-256 hash (never the token
// itself), first in probation, then in the cache (see CacheSize). A later
// verifyAny of a remembered token skips decoding and the signature but still
// re-checks expiry, that the tenant still exists in snap with the
// same kid and identical public key bytes, not retired, revocation and
// membership. The
// returned Claims are the caller's to keep, except Roles and AMR, which
// must not be modified.
func (v *Verifier) verifyAny(snap *tenants.Snapshot, token string) (*Claims, error) {
	c, _, err := v.verifyEntry(snap, token)
	return c, err
}

// verifyEntry is verifyAny that also returns the cache entry when the
// answer came from the cache proper (not probation, not a fresh
// verification), else nil.
func (v *Verifier) verifyEntry(snap *tenants.Snapshot, token string) (*Claims, *verified, error) {
	v.once.Do(v.init)
	c, e, err := v.verify(snap, token)
	if err != nil {
		v.failures.Add(1)
		return nil, nil, err
	}
	return c, e, nil
}

func (v *Verifier) verify(snap *tenants.Snapshot, token string) (*Claims, *verified, error) {
	if len(token) > MaxTokenSize {
		return nil, nil, errTooLarge
	}
	if snap == nil {
		return nil, nil, errNoSnapshot
	}
	var (
		sum   [sha256.Size]byte
		shard *lru.Cache[[sha256.Size]byte, *verified]
		slot  *atomic.Pointer[verified]
	)
	if v.shards != nil {
		// The token is only read, never retained or modified: viewing its
		// bytes in place spares the hot path a copy.
		sum = sha256.Sum256(bytesOf(token))
		shard = v.shards[sum[0]%cacheShards]
		if e, ok := shard.Get(sum); ok {
			v.hits.Add(1)
			c, err := v.recheck(snap, e)
			if err != nil {
				shard.Remove(sum)
				return nil, nil, err
			}
			return c, e, nil
		}
		slot = &v.probation[binary.LittleEndian.Uint64(sum[8:])%uint64(len(v.probation))]
		if e := slot.Load(); e != nil && e.sum == sum {
			v.hits.Add(1)
			// Seen twice: the token is in use. Whoever takes it out of
			// probation moves it into the cache, if it still passes.
			taken := slot.CompareAndSwap(e, nil)
			c, err := v.recheck(snap, e)
			if err != nil {
				return nil, nil, err
			}
			if taken {
				shard.Add(sum, e)
			}
			return c, nil, nil
		}
	}
	v.misses.Add(1)
	e, err := v.verifyFresh(snap, token)
	if err != nil {
		return nil, nil, err
	}
	c, err := live(snap, e)
	if err != nil {
		return nil, nil, err
	}
	if slot != nil {
		e.sum = sum
		if v.seenBefore(sum) {
			shard.Add(sum, e)
		} else {
			slot.Store(e)
		}
	}
	return c, nil, nil
}

// seenBefore records that the token with hash sum was verified and reports
// whether the seen-once filter already held it. Another token whose hash
// shares the slot and the tag could only make a verified token enter the
// cache one use early.
func (v *Verifier) seenBefore(sum [sha256.Size]byte) bool {
	tag := binary.LittleEndian.Uint64(sum[24:])
	i := binary.LittleEndian.Uint64(sum[16:]) % uint64(len(v.seen))
	return v.seen[i].Swap(tag) == tag
}

// recheck is the cache-hit path: what may have changed since the token was
// verified is checked again; the signature cannot have changed.
func (v *Verifier) recheck(snap *tenants.Snapshot, e *verified) (*Claims, error) {
	now := v.now()
	if !now.Before(e.claims.Expires.Add(v.leeway)) {
		return nil, errExpired
	}
	t := snap.ByInternalID(e.tid)
	if t == nil {
		return nil, errKeyRetired
	}
	found := false
	for i := range t.Keys {
		if t.Keys[i].KID == e.kid {
			found = bytes.Equal(t.Keys[i].Public, e.public) && t.Keys[i].Verifies(now)
			break
		}
	}
	if !found {
		return nil, errKeyRetired
	}
	return live(snap, e)
}

// live returns the claims of a verified token as snap has them now: an error
// when the session is revoked or its user is no longer a member of its
// tenant, and otherwise the user's current roles in place of the token's
// (a token's roles are a cache, not the truth).
func live(snap *tenants.Snapshot, e *verified) (*Claims, error) {
	if snap.Revoked(e.tid, e.claims.Subject, e.claims.SID, e.claims.IssuedAt) {
		return nil, errRevoked
	}
	roles, ok := snap.Membership(e.tid, e.claims.Subject)
	if !ok {
		return nil, errNotMember
	}
	c := e.claims
	c.Roles = roles
	return &c, nil
}

// verifyFresh verifies a token that is not in the cache: everything but
// what live checks against the snapshot.
func (v *Verifier) verifyFresh(snap *tenants.Snapshot, token string) (*verified, error) {
	tok, err := decodeJWS(v.b64, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	h, err := decodeHeader(tok.header)
	if err != nil {
		if _, ok := errors.AsType[headerParamError](err); ok {
			return nil, fmt.Errorf("%w: %w", errHeader, err)
		}
		return nil, fmt.Errorf("%w: header: %w", errMalformed, err)
	}
	switch {
	case h.typ != TokenType:
		return nil, fmt.Errorf("%w: typ is not %s", errHeader, TokenType)
	case h.alg != AlgEdDSA && h.alg != AlgES256:
		return nil, errAlg
	case h.kid == "":
		return nil, fmt.Errorf("%w: no kid", errUnknownKey)
	}
	var tc jwsClaims
	if err := decodeClaims(tok.payload, &tc); err != nil {
		if errors.Is(err, errUnknownClaim) {
			return nil, fmt.Errorf("%w: %w", errClaims, err)
		}
		return nil, fmt.Errorf("%w: claims: %w", errMalformed, err)
	}

	// The claims are not yet authenticated: tid only says where to look,
	// and the key found there must then verify them.
	tid := tc.tid
	t := snap.ByInternalID(tid)
	if t == nil {
		return nil, errUnknownKey
	}
	var key *tenants.SigningKey
	for i := range t.Keys {
		if t.Keys[i].KID == h.kid {
			key = &t.Keys[i]
			break
		}
	}
	if key == nil {
		return nil, errUnknownKey
	}
	now := v.now()
	if !key.Verifies(now) {
		return nil, errKeyRetired
	}
	if key.Alg != h.alg {
		return nil, errAlg
	}
	pub, err := v.publicKey(tid, key)
	if err != nil {
		return nil, fmt.Errorf("%w: stored key unusable", errUnknownKey)
	}
	v.signatureChecks.Add(1)
	if !verifySignature(pub, tok.signingInput, tok.signature) {
		return nil, errSignature
	}

	exp, iat, nbf := time.Unix(tc.exp, 0), time.Unix(tc.iat, 0), time.Unix(tc.nbf, 0)
	switch {
	case !tc.hasExp:
		return nil, fmt.Errorf("%w: no exp", errExpired)
	case !now.Before(exp.Add(v.leeway)):
		return nil, errExpired
	case tc.hasIat && now.Before(iat.Add(-v.leeway)):
		return nil, fmt.Errorf("%w: iat in the future", errNotYetValid)
	case tc.hasNbf && now.Before(nbf.Add(-v.leeway)):
		return nil, errNotYetValid
	case tc.iss != Issuer(tid):
		return nil, fmt.Errorf("%w: wrong issuer", errClaims)
	case !slices.Contains(tc.aud, Audience(tid)):
		return nil, fmt.Errorf("%w: wrong audience", errClaims)
	case !tc.hasIat:
		return nil, fmt.Errorf("%w: no iat", errClaims)
	case !exp.After(iat):
		return nil, fmt.Errorf("%w: exp not after iat", errClaims)
	case exp.Sub(iat) > MaxTTL:
		return nil, fmt.Errorf("%w: lifetime over %s", errClaims, MaxTTL)
	case tc.sub == "":
		return nil, fmt.Errorf("%w: no sub", errClaims)
	case tc.sid == "":
		return nil, fmt.Errorf("%w: no sid", errClaims)
	}
	c := Claims{
		Subject:  tc.sub,
		TenantID: t.InternalID,
		Tenant:   tc.tenant,
		Email:    tc.email,
		Roles:    tc.roles,
		SID:      tc.sid,
		Method:   tc.method,
		AMR:      tc.amr,
		IssuedAt: iat.UTC(),
		Expires:  exp.UTC(),
	}
	return &verified{claims: c, tid: t.InternalID, kid: key.KID, public: bytes.Clone(key.Public)}, nil
}

// verifySignature checks a JWS signature (RFC 7515 §5.2) made with pub: an
// Ed25519 signature (RFC 8037 §3.1), or an ES256 one as the 64 bytes R || S
// (RFC 7518 §3.4).
func verifySignature(pub any, signingInput string, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, bytesOf(signingInput), sig)
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		sum := sha256.Sum256(bytesOf(signingInput))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, sum[:], r, s)
	}
	return false
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
