package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// NamespacePasskeys is where passkeys live: a bbolt bucket, an etcd key
// segment.
const NamespacePasskeys = "passkeys"

// Passkey is a member's WebAuthn credential (tenants.Passkey), stored
// under PasskeyKey ("passkeys").
type Passkey struct {
	V              int       `json:"v"`
	ID             []byte    `json:"id"`
	PublicKey      []byte    `json:"publicKey"`
	SignCount      uint32    `json:"signCount,omitempty"`
	AAGUID         []byte    `json:"aaguid,omitempty"`
	Transports     []string  `json:"transports,omitempty"`
	BackupEligible bool      `json:"backupEligible,omitempty"`
	BackupState    bool      `json:"backupState,omitempty"`
	Name           string    `json:"name"`
	Created        time.Time `json:"created"`
	LastUsed       time.Time `json:"lastUsed,omitzero"`
}

// PasskeyKey is the key of a passkey: the tenant's internal id, the
// user's id, then a SHA-256 of the credential id, which keeps keys short
// whatever length (up to 1023 bytes) an authenticator chose.
func PasskeyKey(tenantInternalID, userID string, id []byte) string {
	sum := sha256.Sum256(id)
	return PasskeyUserPrefix(tenantInternalID, userID) + hex.EncodeToString(sum[:])
}

// PasskeyUserPrefix is the common prefix of the keys of a user's
// passkeys in a tenant; TenantPrefix is that of all the tenant's.
func PasskeyUserPrefix(tenantInternalID, userID string) string {
	return MembershipKey(tenantInternalID, userID) + "/"
}

// CheckNewPasskey is the check both backends make, inside the write,
// before storing p for the user: tenantKeys are the keys (under
// NamespacePasskeys, without the namespace) of every passkey the tenant
// holds. The credential id must be new to the tenant (else
// tenants.ErrConflict) and the user must hold fewer than
// tenants.MaxPasskeysPerUser (else tenants.ErrTooManyPasskeys).
func CheckNewPasskey(tenantKeys []string, tenantInternalID, userID string, p tenants.Passkey) error {
	switch {
	case len(p.ID) == 0 || len(p.PublicKey) == 0 || p.Name == "":
		return errors.New("add passkey: id, public key and name must be set")
	case len(p.ID) > tenants.MaxPasskeyIDLen:
		return fmt.Errorf("add passkey: credential id longer than %d bytes", tenants.MaxPasskeyIDLen)
	}
	sum := sha256.Sum256(p.ID)
	suffix := "/" + hex.EncodeToString(sum[:])
	mine, held := PasskeyUserPrefix(tenantInternalID, userID), 0
	for _, k := range tenantKeys {
		if strings.HasSuffix(k, suffix) {
			return fmt.Errorf("passkey in tenant %s: credential id already registered: %w", tenantInternalID, tenants.ErrConflict)
		}
		if strings.HasPrefix(k, mine) {
			held++
		}
	}
	if held >= tenants.MaxPasskeysPerUser {
		return fmt.Errorf("passkey in tenant %s: the user already holds %d: %w", tenantInternalID, held, tenants.ErrTooManyPasskeys)
	}
	return nil
}

// FromPasskey is the record of p.
func FromPasskey(p tenants.Passkey) Passkey {
	p = p.Clone()
	return Passkey{V: Version, ID: p.ID, PublicKey: p.PublicKey, SignCount: p.SignCount, AAGUID: p.AAGUID,
		Transports: p.Transports, BackupEligible: p.BackupEligible, BackupState: p.BackupState, Name: p.Name,
		Created: p.Created.UTC(), LastUsed: p.LastUsed.UTC()}
}

// ToPasskey is the model of r; it shares no slice with r.
func (r *Passkey) ToPasskey() tenants.Passkey {
	return tenants.Passkey{ID: slices.Clone(r.ID), PublicKey: slices.Clone(r.PublicKey), SignCount: r.SignCount,
		AAGUID: slices.Clone(r.AAGUID), Transports: slices.Clone(r.Transports), BackupEligible: r.BackupEligible,
		BackupState: r.BackupState, Name: r.Name, Created: r.Created, LastUsed: r.LastUsed}
}

// UpdatePasskey runs fn on the model of rec and writes back what it
// leaves, keeping the credential id: the change both backends make in
// tenants.Store.UpdatePasskey. A name left empty is refused.
func UpdatePasskey(rec *Passkey, fn func(*tenants.Passkey) error) error {
	p := rec.ToPasskey()
	if err := fn(&p); err != nil {
		return err
	}
	if p.Name == "" {
		return errors.New("update passkey: the name must not be empty")
	}
	p.ID = rec.ID
	*rec = FromPasskey(p)
	return nil
}

// SortPasskeys orders passkeys oldest first, then by id, the order
// tenants.Store.Passkeys promises.
func SortPasskeys(ps []tenants.Passkey) {
	slices.SortFunc(ps, func(a, b tenants.Passkey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
}
