package passkey

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/tenantgate/tenantgate/tenants"
)

// Errors of this package; callers compare with errors.Is.
var (
	// ErrPathTenancy: passkeys are not offered on a path-tenancy host.
	ErrPathTenancy = errors.New("passkeys need a tenant host of its own (a custom domain or <id>.<base-domain>), not path tenancy")
	// ErrRefused: the browser's response did not verify (wrong origin or
	// RP ID, challenge, signature, user, unknown credential…). The
	// wrapped detail is for the log, never for the page.
	ErrRefused = errors.New("passkey response refused")
	// ErrCloned: the credential's sign count did not grow.
	ErrCloned = errors.New("passkey sign count did not grow: the authenticator may be cloned")
)

// Handle is the WebAuthn user handle of a user in a tenant: SHA-256 of
// both internal ids (random, and never shown as such to anyone but the
// tenant's app). It is opaque, never the email, and differs in every
// tenant. It depends on no key: the authenticator keeps it for the life of
// the passkey and returns it at every sign-in, where it must match
// (go-webauthn's user handle check), so a handle under a key derived from
// the master key would stop every passkey at the first master-key rotate.
func Handle(tenantInternalID, userID string) []byte {
	sum := sha256.Sum256([]byte("tenantgate-passkey-user-handle:v2\x00" + tenantInternalID + "\x00" + userID))
	return sum[:]
}

// RP is the relying party of one tenant host.
type RP struct {
	// ID is the RP ID: the tenant's canonical host.
	ID string
	// Origin is the one origin ceremonies are accepted from.
	Origin string
	// Name is shown by the authenticator (the tenant's display name).
	Name string
}

// RPFor is the relying party of a tenant served on host (canonical, no
// port) at origin (scheme://host[:port], as the sign-in pages build it).
// pathTenancy is set when the tenant was resolved from /org/<id>/ on the
// apex host: then it returns ErrPathTenancy.
func RPFor(host, origin, name string, pathTenancy bool) (RP, error) {
	if pathTenancy {
		return RP{}, ErrPathTenancy
	}
	if host == "" || !strings.HasPrefix(origin, "https://"+host) && !strings.HasPrefix(origin, "http://"+host) {
		return RP{}, fmt.Errorf("passkey relying party: origin %q is not of host %q", origin, host)
	}
	return RP{ID: host, Origin: origin, Name: name}, nil
}

func (rp RP) webauthn() (*webauthn.WebAuthn, error) {
	w, err := webauthn.New(&webauthn.Config{
		RPID: rp.ID, RPDisplayName: rp.Name, RPOrigins: []string{rp.Origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey relying party %s: %w", rp.ID, err)
	}
	return w, nil
}

// Account is the person a ceremony is for: one membership.
type Account struct {
	// Handle is the user handle (Handle).
	Handle []byte
	// Name is what the authenticator shows (the email).
	Name string
	// Passkeys are the person's passkeys in this tenant.
	Passkeys []tenants.Passkey
}

// user adapts an Account to the library's User.
type user struct{ a *Account }

func (u user) WebAuthnID() []byte          { return u.a.Handle }
func (u user) WebAuthnName() string        { return u.a.Name }
func (u user) WebAuthnDisplayName() string { return u.a.Name }
func (u user) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.a.Passkeys))
	for _, p := range u.a.Passkeys {
		ts := make([]protocol.AuthenticatorTransport, 0, len(p.Transports))
		for _, t := range p.Transports {
			ts = append(ts, protocol.AuthenticatorTransport(t))
		}
		out = append(out, webauthn.Credential{
			ID: p.ID, PublicKey: p.PublicKey, AttestationType: "none", Transport: ts,
			Flags:         webauthn.CredentialFlags{UserPresent: true, BackupEligible: p.BackupEligible, BackupState: p.BackupState},
			Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
		})
	}
	return out
}

// BeginRegistration starts registering a new passkey for a: the options
// for navigator.credentials.create (JSON) and the ceremony to seal. The
// person's passkeys are excluded, so an authenticator holding one says so
// instead of making a second.
func BeginRegistration(rp RP, a *Account, now time.Time) ([]byte, Ceremony, error) {
	w, err := rp.webauthn()
	if err != nil {
		return nil, Ceremony{}, err
	}
	u := user{a}
	creation, sd, err := w.BeginRegistration(u, webauthn.WithExclusions(webauthn.Credentials(u.WebAuthnCredentials()).CredentialDescriptors()))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	return newCeremony(KindRegister, creation, sd, now)
}

// FinishRegistration verifies the browser's answer (body, the
// PublicKeyCredential as JSON) to the ceremony c and returns the passkey
// to store, named name. Any failure to verify wraps ErrRefused.
func FinishRegistration(rp RP, a *Account, c Ceremony, body []byte, name string, now time.Time) (tenants.Passkey, error) {
	if c.Kind != KindRegister {
		return tenants.Passkey{}, fmt.Errorf("%w: a %s ceremony used to register", ErrRefused, c.Kind)
	}
	w, err := rp.webauthn()
	if err != nil {
		return tenants.Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return tenants.Passkey{}, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	cred, err := w.CreateCredential(user{a}, c.Session, parsed)
	if err != nil {
		return tenants.Passkey{}, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if len(cred.ID) > tenants.MaxPasskeyIDLen {
		return tenants.Passkey{}, fmt.Errorf("%w: credential id of %d bytes", ErrRefused, len(cred.ID))
	}
	ts := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		ts = append(ts, string(t))
	}
	return tenants.Passkey{
		ID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, Transports: ts,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		Name: name, Created: now.UTC(),
	}, nil
}

// BeginLogin starts a sign-in with one of a's passkeys: the options for
// navigator.credentials.get (JSON) and the ceremony to seal, which the
// caller binds to a (Seal). The options are the same for every account,
// whatever passkeys it holds, none included: they list no credentials
// (passkeys are registered discoverable, so the authenticator finds them
// by RP ID) and a.Passkeys is not read. So a second sign-in step can offer
// a passkey before it tells anyone whether the password was right, and
// FinishLogin refuses any credential that is not a's.
func BeginLogin(rp RP, a *Account, now time.Time) ([]byte, Ceremony, error) {
	w, err := rp.webauthn()
	if err != nil {
		return nil, Ceremony{}, err
	}
	assertion, sd, err := w.BeginDiscoverableLogin()
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	sd.UserID = a.Handle
	return newCeremony(KindLogin, assertion, sd, now)
}

// Assertion is a verified sign-in with a passkey, not yet recorded.
type Assertion struct {
	// ID is the credential used.
	ID []byte
	// SignCount is the count the authenticator reported.
	SignCount uint32
	// UserVerified: the authenticator verified the person (PIN,
	// biometrics), not only their presence.
	UserVerified bool
	backupState  bool
	now          time.Time
}

// Update is the change to store for the credential
// (tenants.Store.UpdatePasskey): it refuses, with ErrCloned, a sign count
// that does not grow past the stored one when either is nonzero; the
// store runs it on the passkey as stored, so two replicas cannot both
// accept the same count.
func (s Assertion) Update(p *tenants.Passkey) error {
	if (s.SignCount != 0 || p.SignCount != 0) && s.SignCount <= p.SignCount {
		return ErrCloned
	}
	p.SignCount, p.LastUsed, p.BackupState = s.SignCount, s.now.UTC(), s.backupState
	return nil
}

// FinishLogin verifies the browser's answer (body) to the ceremony c
// against a's passkeys: the credential must be one of them, and the user
// handle the authenticator returns, when it returns one, a's. Any failure
// to verify wraps ErrRefused. The
// caller must then store Assertion.Update with UpdatePasskey and accept
// the sign-in only if that succeeds.
func FinishLogin(rp RP, a *Account, c Ceremony, body []byte, now time.Time) (Assertion, error) {
	if c.Kind != KindLogin {
		return Assertion{}, fmt.Errorf("%w: a %s ceremony used to sign in", ErrRefused, c.Kind)
	}
	w, err := rp.webauthn()
	if err != nil {
		return Assertion{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	cred, err := w.ValidateLogin(user{a}, c.Session, parsed)
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if !bytes.Equal(cred.ID, parsed.RawID) {
		return Assertion{}, fmt.Errorf("%w: credential mismatch", ErrRefused)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	return Assertion{
		ID: cred.ID, SignCount: parsed.Response.AuthenticatorData.Counter,
		UserVerified: flags.HasUserVerified(), backupState: flags.HasBackupState(), now: now,
	}, nil
}
