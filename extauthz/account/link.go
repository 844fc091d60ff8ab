// Package account holds what the self-service account pages and the
// invitation command share: the single-use links sent by email (password
// reset, invitation), sealed so that they carry their own state, and the
// messages that carry them.
//
// A link is a sealed, self-contained token: nothing is stored when it is
// issued. It is bound to its kind and its tenant (the sealing context, so
// an acme link does not even open on globex), it expires, a reset link
// also carries a keyed fingerprint of the password hash it was issued
// against (so any password change, by any route, kills it), and it is
// made single use by recording the SHA-256 of the token, never the token,
// with Store.UseAssertionID when it is redeemed, which holds across
// replicas.
package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
)

// Kinds of link.
const (
	KindReset  = "reset"
	KindInvite = "invite"
)

// Lifetimes.
const (
	// ResetTTL is how long a password reset link works.
	ResetTTL = 30 * time.Minute
	// DefaultInviteTTL is how long an invitation works unless the command
	// says otherwise (--invite-ttl).
	DefaultInviteTTL = 7 * 24 * time.Hour
	// MaxInviteTTL bounds --invite-ttl; a revocation of invitations is kept
	// this long.
	MaxInviteTTL = 30 * 24 * time.Hour
)

// MaxTokenLen bounds a token accepted from a URL or form: far more than a
// sealed link needs, far less than a request may carry.
const MaxTokenLen = 2048

// ErrInvalid is wrapped by every refusal of a token: malformed, sealed for
// another kind or tenant, or expired. The reason is for logs; people see
// one message.
var ErrInvalid = errors.New("invalid or expired link")

// Link is what a token carries.
type Link struct {
	Kind string `json:"k"`
	// UserID is the account a reset link is for ("" for an invitation).
	UserID string `json:"u,omitempty"`
	// Email is the address the link was sent to.
	Email string `json:"e"`
	// Password is a keyed fingerprint of the password hash a reset link
	// was issued against (PasswordFingerprint).
	Password string `json:"p,omitempty"`
	// Roles are an invitation's roles in the tenant.
	Roles []string `json:"r,omitempty"`
	// Issued and Expires bound the link's life; Issued also orders it
	// against a revocation of invitations.
	Issued  time.Time `json:"iat"`
	Expires time.Time `json:"exp"`
	// Nonce makes every token unique.
	Nonce string `json:"n"`
	// V is the record version.
	V int `json:"v"`
}

const linkVersion = 1

// Links seals and opens links under a key derived from the master key for
// this purpose alone.
type Links struct {
	sealer *seal.Sealer
	fpKey  []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewLinks derives the link keys from the master key's sealer.
func NewLinks(master *seal.Sealer) (*Links, error) {
	s, err := seal.NewSealer(master.DeriveKey("account-links"))
	if err != nil {
		return nil, fmt.Errorf("account links: %w", err)
	}
	return &Links{sealer: s, fpKey: master.DeriveKey("account-password-fingerprint")}, nil
}

func (l *Links) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func sealContext(kind, tenantInternalID string) string {
	return "account-link:" + kind + ":" + tenantInternalID
}

// PasswordFingerprint is a keyed digest of a stored password hash: equal
// hashes give equal fingerprints, and the fingerprint reveals nothing of
// the hash.
func (l *Links) PasswordFingerprint(hash string) string {
	m := hmac.New(sha256.New, l.fpKey)
	io.WriteString(m, hash)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Issue seals k for the tenant, setting Issued to now, Expires to now+ttl,
// a fresh Nonce and the version. It returns the token for the URL.
func (l *Links) Issue(k Link, tenantInternalID string, ttl time.Duration) (string, Link, error) {
	if k.Kind != KindReset && k.Kind != KindInvite {
		return "", Link{}, fmt.Errorf("issue link: unknown kind %q", k.Kind)
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", Link{}, fmt.Errorf("issue link: %w", err)
	}
	now := l.now()
	k.Issued, k.Expires, k.Nonce, k.V = now, now.Add(ttl), base64.RawURLEncoding.EncodeToString(n[:]), linkVersion
	plain, err := json.Marshal(k)
	if err != nil {
		return "", Link{}, fmt.Errorf("issue link: %w", err)
	}
	sealed, err := l.sealer.Seal(plain, sealContext(k.Kind, tenantInternalID))
	if err != nil {
		return "", Link{}, fmt.Errorf("issue link: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), k, nil
}

// Open returns the link a token carries, if it is a link of this kind for
// this tenant and has not expired. It does not check single use
// (UseID) or, for a reset, the password fingerprint: the caller does, with
// the store.
func (l *Links) Open(token, kind, tenantInternalID string) (Link, error) {
	sealed, err := DecodeToken(token)
	if err != nil {
		return Link{}, err
	}
	plain, err := l.sealer.Open(sealed, sealContext(kind, tenantInternalID))
	if err != nil {
		return Link{}, fmt.Errorf("%w: does not open", ErrInvalid)
	}
	var k Link
	if err := json.Unmarshal(plain, &k); err != nil || k.V != linkVersion || k.Kind != kind {
		return Link{}, fmt.Errorf("%w: bad record", ErrInvalid)
	}
	if !l.now().Before(k.Expires) {
		return Link{}, fmt.Errorf("%w: expired", ErrInvalid)
	}
	return k, nil
}

// DecodeToken checks a token's shape (unpadded base64url, at most
// MaxTokenLen characters) and returns its bytes.
func DecodeToken(token string) ([]byte, error) {
	if token == "" || len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: bad length", ErrInvalid)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	return b, nil
}

// UseID is the single-use record of a token (Store.UseAssertionID): its
// SHA-256, so the store never holds a working link.
func UseID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "link:" + hex.EncodeToString(sum[:])
}

// InviteRevocationKey is the revocation key that withdraws every invitation
// to email in the tenant issued up to its NotBefore (Snapshot.RevokedAt).
func InviteRevocationKey(tenantInternalID, email string) string {
	return "invite:" + tenantInternalID + ":" + email
}
