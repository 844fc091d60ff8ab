package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Audit event names (docs/operations.md, Audit trail). Each is one thing a
// person or an administrator did, as it happened to one tenant.
const (
	// AuditSignIn is a sign-in to the tenant: password, SSO, or a switch
	// from the apex (Method says which); Outcome success, or refused with
	// the Reason.
	AuditSignIn = "signin"
	// AuditSignOut is a sign-out: the session revoked and the cookie
	// cleared.
	AuditSignOut = "signout"
	// AuditSwitch is the apex handing a person a code to switch into the
	// tenant (the sign-in that redeems it is an AuditSignIn with method
	// "switch").
	AuditSwitch = "switch"
	// AuditSessionRevoked is a session revoked otherwise than by signing
	// out: by its holder from the account page, one session or every one
	// (Subject is the user whose sessions went).
	AuditSessionRevoked = "session_revoked"
	// AuditSSOFirstSeen is the first sign-in of an identity an SSO method of
	// the tenant vouched for: the user was created.
	AuditSSOFirstSeen = "sso_identity_created"
	// AuditTenantApplied is a tenant created or changed by an apply;
	// Changes names the top-level fields that changed ("created" for a new
	// tenant), never their values.
	AuditTenantApplied = "tenant_applied"
	// AuditTenantDeleted is a tenant deleted.
	AuditTenantDeleted = "tenant_deleted"
	// AuditUserAdded is a membership added (Roles are its roles).
	AuditUserAdded = "user_added"
	// AuditUserRemoved is a membership removed, and its sessions revoked.
	AuditUserRemoved = "user_removed"
	// AuditRolesChanged is an existing membership given other roles.
	AuditRolesChanged = "roles_changed"
	// AuditKeysRotated is a tenant's signing key rotated.
	AuditKeysRotated = "keys_rotated"
	// AuditMFAEnrolled is a second factor enrolled by the member (Method
	// names its type: totp).
	AuditMFAEnrolled = "mfa_enrolled"
	// AuditRecoveryCodeUsed is a recovery code spent to sign in, in place
	// of the second factor.
	AuditRecoveryCodeUsed = "mfa_recovery_code_used"
	// AuditRecoveryCodesRenewed is a member's recovery codes replaced by
	// new ones.
	AuditRecoveryCodesRenewed = "mfa_recovery_codes_renewed"
	// AuditMFAReset is a member's second factors removed by an
	// administrator (users reset-mfa).
	AuditMFAReset = "mfa_reset"
	// AuditPasskeyAdded, AuditPasskeyRenamed and AuditPasskeyRemoved are
	// a member's own changes to their passkeys on the account page.
	AuditPasskeyAdded   = "passkey_added"
	AuditPasskeyRenamed = "passkey_renamed"
	AuditPasskeyRemoved = "passkey_removed"
)

// AuditEvents lists every event name, in the order docs/operations.md
// describes them.
var AuditEvents = []string{
	AuditSignIn, AuditSignOut, AuditSwitch, AuditSessionRevoked, AuditSSOFirstSeen,
	AuditTenantApplied, AuditTenantDeleted, AuditUserAdded, AuditUserRemoved,
	AuditRolesChanged, AuditKeysRotated, AuditMFAEnrolled, AuditRecoveryCodeUsed,
	AuditRecoveryCodesRenewed, AuditMFAReset,
	AuditPasskeyAdded, AuditPasskeyRenamed, AuditPasskeyRemoved,
}

// Audit outcomes and actors.
const (
	OutcomeSuccess = "success"
	OutcomeRefused = "refused"
	// ActorCLI and ActorAdminAPI are the actors of administrative changes
	// made by a tenantgate command on the store itself and through the
	// admin API; a sign-in's actor is the user id, or "anonymous" before
	// anyone is known.
	ActorCLI       = "cli"
	ActorAdminAPI  = "admin-api"
	ActorAnonymous = "anonymous"
)

// AuditEvent is one entry of a tenant's audit trail. It names who did what
// to whom, from where, and how it ended; it never holds a password, token,
// secret or cookie. Email is the address of the person signing in or being
// added (an audit trail must name who), the only personal data in it.
//
// The store assigns Seq, Prev and Hash, and Time when it is zero: the
// events of a tenant are numbered 1, 2, … with no gaps, and each carries
// the hash of the one before (Prev; "" for the first), so that a change to
// or deletion of a stored event breaks the chain (AuditLog.VerifyAudit).
// Times within a tenant never go backwards: an event is never earlier than
// the one before it, whichever process's clock wrote it.
type AuditEvent struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant"`
	Event  string    `json:"event"`
	// Actor is who acted: a user id, ActorAnonymous, ActorCLI or
	// ActorAdminAPI.
	Actor string `json:"actor"`
	// Subject is who or what was acted on: a user id, an email for a
	// membership change, a tenant id for a tenant change.
	Subject string `json:"subject,omitempty"`
	Email   string `json:"email,omitempty"`
	// Method is the sign-in method (password, oidc, saml, social, switch).
	Method string `json:"method,omitempty"`
	// Client is the client address (X-Forwarded-For with
	// --trusted-proxy-hops, else the peer), RequestID Envoy's
	// x-request-id.
	Client    string `json:"client,omitempty"`
	RequestID string `json:"requestID,omitempty"`
	// Outcome is OutcomeSuccess or OutcomeRefused; Reason the refusal's
	// code.
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason,omitempty"`
	Changes []string `json:"changes,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	Prev    string   `json:"prev"`
	Hash    string   `json:"hash"`
}

// AuditQuery selects events of one tenant: those at or after Since (zero:
// all), of the Event named (empty: every event).
type AuditQuery struct {
	Tenant string
	Since  time.Time
	Event  string
}

// AuditVerdict is the result of checking a tenant's chain.
type AuditVerdict struct {
	// Events is how many events were checked; First and Last their seqs.
	Events      int
	First, Last uint64
	// Pruned is the seq of the last event retention removed (0: none).
	Pruned uint64
	// Break is the first break found, or nil when the chain holds.
	Break *AuditBreak
}

// AuditBreak is where a tenant's audit chain stops holding: the seq of the
// first event that is missing, changed or unreadable, and what is wrong.
type AuditBreak struct {
	Seq     uint64 `json:"seq"`
	Problem string `json:"problem"`
}

// AuditLog is the audit trail a Store keeps beside its records (boltstore
// and etcdstore both implement it; storetest.RunAudit is its conformance
// suite). Events are kept per tenant id (the slug), so a tenant's trail
// outlives the tenant (its deletion is in it) until retention removes it.
type AuditLog interface {
	// AppendAudit appends events, each to its tenant's chain, all in one
	// write (all or nothing), and returns them as stored (Seq, Time, Prev,
	// Hash set). An event without a tenant or name is an error. Two
	// processes appending to one tenant at once both succeed, one after the
	// other: the chain stays one line.
	AppendAudit(ctx context.Context, events []AuditEvent) ([]AuditEvent, error)
	// AuditEvents returns the tenant's events that q selects, oldest
	// first. A stored event that cannot be read is an error wrapping
	// ErrCorrupt.
	AuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// VerifyAudit checks the tenant's chain from the oldest retained event
	// to the newest: numbers without gaps, each event's Prev the hash of
	// the stored bytes of the one before, the first one's Prev the hash of
	// the last event pruned (or "" when none was), and the newest the one
	// the tenant's head record names. Retention pruning (PruneAudit)
	// records what it removed, so it never breaks the chain; any other
	// deletion, at the start, in the middle or at the end, and any change
	// to an event's bytes do. An error is a failure to read, not a break.
	VerifyAudit(ctx context.Context, tenant string) (AuditVerdict, error)
	// PruneAudit removes every event older than before, of every tenant,
	// oldest first, and records in each tenant's head what it removed. It
	// returns how many events went.
	PruneAudit(ctx context.Context, before time.Time) (int, error)
}

// AuditChanges names the top-level tenant-file fields (as a tenant file
// spells them) in which after differs from before: the diff summary of an
// AuditTenantApplied event. Values are never named, so a changed client
// secret shows as "methods" and nothing more. before nil (a new tenant)
// gives ["created"].
func AuditChanges(before, after *Tenant) []string {
	if before == nil {
		return []string{"created"}
	}
	fields := func(t *Tenant) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		b, err := json.Marshal(t)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			// Tenants always marshal; name everything rather than nothing.
			m["?"] = json.RawMessage(`"unreadable"`)
		}
		return m
	}
	a, b := fields(before), fields(after)
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	// Sealed secrets are never marshalled: compare them as bytes.
	if !slices.Contains(out, "methods") && !slices.EqualFunc(before.Methods, after.Methods, func(x, y Method) bool {
		return bytes.Equal(x.Sealed, y.Sealed)
	}) {
		out = append(out, "methods")
	}
	slices.Sort(out)
	return out
}
