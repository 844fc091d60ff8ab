package passkey

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/tenantgate/tenantgate/extauthz/seal"
)

// CeremonyTTL is how long a person has between asking for a ceremony's
// options and answering them: the library's timeout, the sealed state's
// life and the single-use record's.
const CeremonyTTL = 5 * time.Minute

// Ceremony kinds.
const (
	KindRegister = "register"
	KindLogin    = "login"
)

// Ceremony is the server side of one registration or sign-in in
// progress, sealed into a short-lived cookie between its two requests.
type Ceremony struct {
	// ID is random; the caller spends it once (UseID).
	ID string `json:"id"`
	// Kind is KindRegister or KindLogin.
	Kind string `json:"kind"`
	// Expires is when the ceremony stops being accepted.
	Expires time.Time `json:"exp"`
	// Session is the library's state: challenge, user handle, allowed
	// credentials, RP ID.
	Session webauthn.SessionData `json:"session"`
}

// ceremonyVersion is the sealed record's version.
const ceremonyVersion = 1

type sealedCeremony struct {
	V int `json:"v"`
	Ceremony
}

// newCeremony wraps the library's session and options.
func newCeremony(kind string, options any, sd *webauthn.SessionData, now time.Time) ([]byte, Ceremony, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, Ceremony{}, fmt.Errorf("passkey ceremony id: %w", err)
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("encode passkey options: %w", err)
	}
	c := Ceremony{ID: base64.RawURLEncoding.EncodeToString(b), Kind: kind, Expires: now.Add(CeremonyTTL).UTC(), Session: *sd}
	c.Session.Expires = c.Expires
	return opts, c, nil
}

// UseID is the id under which the caller records the ceremony as spent
// (tenants.Store.UseAssertionID), in a space of its own.
func (c Ceremony) UseID() string { return "tg-passkey/" + c.ID }

// ceremonyContext binds a sealed ceremony to its tenant, user and kind,
// so that one taken from another tenant's or person's page, or from a
// registration into a sign-in, does not open.
func ceremonyContext(tenantInternalID, userID, kind string) string {
	return "passkey-ceremony:v1:" + tenantInternalID + ":" + userID + ":" + kind
}

// ErrCeremony: the sealed ceremony did not open, is of another tenant,
// person or kind, or has expired.
var ErrCeremony = errors.New("passkey ceremony not valid")

// Seal seals c for the tenant and user, base64url for a cookie.
func Seal(s *seal.Sealer, c Ceremony, tenantInternalID, userID string) (string, error) {
	plain, err := json.Marshal(sealedCeremony{V: ceremonyVersion, Ceremony: c})
	if err != nil {
		return "", fmt.Errorf("encode passkey ceremony: %w", err)
	}
	sealed, err := s.Seal(plain, ceremonyContext(tenantInternalID, userID, c.Kind))
	if err != nil {
		return "", fmt.Errorf("seal passkey ceremony: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// maxSealed bounds what Open decodes: a ceremony with twenty allowed
// credentials of the largest size fits well below it.
const maxSealed = 8 << 10

// Open opens a sealed ceremony of the given kind for the tenant and user,
// or returns an error wrapping ErrCeremony. It does not spend it.
func Open(s *seal.Sealer, v, tenantInternalID, userID, kind string, now time.Time) (Ceremony, error) {
	if len(v) > maxSealed {
		return Ceremony{}, fmt.Errorf("%w: too long", ErrCeremony)
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil {
		return Ceremony{}, fmt.Errorf("%w: not base64url", ErrCeremony)
	}
	plain, err := s.Open(sealed, ceremonyContext(tenantInternalID, userID, kind))
	if err != nil {
		return Ceremony{}, fmt.Errorf("%w: does not open", ErrCeremony)
	}
	var rec sealedCeremony
	if err := json.Unmarshal(plain, &rec); err != nil || rec.V != ceremonyVersion || rec.Kind != kind || rec.ID == "" {
		return Ceremony{}, fmt.Errorf("%w: unreadable", ErrCeremony)
	}
	if !now.Before(rec.Expires) {
		return Ceremony{}, fmt.Errorf("%w: expired", ErrCeremony)
	}
	return rec.Ceremony, nil
}
