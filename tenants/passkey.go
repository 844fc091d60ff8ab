package tenants

import (
	"errors"
	"slices"
	"time"
)

// MaxPasskeysPerUser is how many passkeys one person may register in one
// tenant (AddPasskey refuses more with ErrTooManyPasskeys): enough for a
// phone, a laptop and spare security keys, few enough that a sign-in's
// allow-list stays small.
const MaxPasskeysPerUser = 20

// MaxPasskeyIDLen bounds a credential id (WebAuthn §5.8.3: at most 1023
// bytes).
const MaxPasskeyIDLen = 1023

// ErrTooManyPasskeys: the person already holds MaxPasskeysPerUser passkeys
// in the tenant (AddPasskey).
var ErrTooManyPasskeys = errors.New("too many passkeys")

// Passkey is a WebAuthn credential a member registered in one tenant. It
// belongs to the membership: a credential id is unique within its tenant,
// found only under the (tenant, user) it was registered for, and removed
// with the membership or the tenant, so a passkey of one tenant is never
// looked up on another.
type Passkey struct {
	// ID is the credential id the authenticator chose.
	ID []byte
	// PublicKey is the credential public key, COSE-encoded.
	PublicKey []byte
	// SignCount is the authenticator's signature counter as last seen.
	SignCount uint32
	// AAGUID names the authenticator model (16 bytes, zero for many).
	AAGUID []byte
	// Transports are the authenticator's transport hints (usb, internal…).
	Transports []string
	// BackupEligible and BackupState are the authenticator data flags
	// BE and BS (WebAuthn §6.1): BE never changes for a credential.
	BackupEligible bool
	BackupState    bool
	// Name is what the person called it; never empty.
	Name string
	// Created and LastUsed are when it was registered and last signed in
	// with (LastUsed zero: never).
	Created  time.Time
	LastUsed time.Time
}

// Clone returns a copy that shares no slice with p.
func (p Passkey) Clone() Passkey {
	p.ID = slices.Clone(p.ID)
	p.PublicKey = slices.Clone(p.PublicKey)
	p.AAGUID = slices.Clone(p.AAGUID)
	p.Transports = slices.Clone(p.Transports)
	return p
}
