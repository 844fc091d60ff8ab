package record

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// NamespaceSessions holds the recorded sessions (tenants.Session), under
// SessionKey(tenant, user, sid): a person's sessions in a tenant share
// SessionPrefix, and a tenant's share TenantPrefix, so both are one range.
// Records expire with their session (etcd: on a lease; bbolt: an expiry
// index pruned by every write) and are carried by backups, as revocations
// are: a restored store lists the sessions its revocations still govern.
const NamespaceSessions = "sessions"

// Session is one recorded session, stored under SessionKey until Expires.
type Session struct {
	V       int       `json:"v"`
	Tenant  string    `json:"tenant"`
	User    string    `json:"user"`
	SID     string    `json:"sid"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	Device  string    `json:"device"`
	Address string    `json:"address"`
	Method  string    `json:"method"`
}

// SessionKey is the key of a recorded session.
func SessionKey(tenantInternalID, userID, sid string) string {
	return SessionPrefix(tenantInternalID, userID) + sid
}

// SessionPrefix is the common prefix of the keys of a person's recorded
// sessions in one tenant.
func SessionPrefix(tenantInternalID, userID string) string {
	return TenantPrefix(tenantInternalID) + userID + "/"
}

// FromSession checks a session to be recorded and returns its record.
// Every field must be set and within tenants.MaxSessionFieldLen, ids must
// not hold "/" (they are key segments), and Expires must follow Issued.
func FromSession(s tenants.Session) (Session, error) {
	fields := []struct{ name, value string }{
		{"tenant", s.TenantInternalID}, {"user", s.UserID}, {"sid", s.SID},
		{"device", s.Device}, {"address", s.Address}, {"method", s.Method},
	}
	var errs []error
	for i, f := range fields {
		switch {
		case f.value == "":
			errs = append(errs, fmt.Errorf("%s is empty", f.name))
		case len(f.value) > tenants.MaxSessionFieldLen:
			errs = append(errs, fmt.Errorf("%s is longer than %d bytes", f.name, tenants.MaxSessionFieldLen))
		case i < 3 && strings.Contains(f.value, "/"):
			errs = append(errs, fmt.Errorf("%s holds a /", f.name))
		}
	}
	if s.Issued.IsZero() || !s.Expires.After(s.Issued) {
		errs = append(errs, errors.New("expires must follow issued"))
	}
	if err := errors.Join(errs...); err != nil {
		return Session{}, fmt.Errorf("record session: %w", err)
	}
	return Session{V: Version, Tenant: s.TenantInternalID, User: s.UserID, SID: s.SID,
		Issued: s.Issued.UTC(), Expires: s.Expires.UTC(), Device: s.Device, Address: s.Address, Method: s.Method}, nil
}

// ToSession converts a stored record to the model.
func (r *Session) ToSession() tenants.Session {
	return tenants.Session{TenantInternalID: r.Tenant, UserID: r.User, SID: r.SID, Issued: r.Issued,
		Expires: r.Expires, Device: r.Device, Address: r.Address, Method: r.Method}
}

// CheckSessionKey reports, as tenants.ErrCorrupt, a record stored under
// another key than its own.
func CheckSessionKey(key string, r *Session) error {
	if key != SessionKey(r.Tenant, r.User, r.SID) {
		return fmt.Errorf("%w: session record %s names tenant %s, user %s, sid %s", tenants.ErrCorrupt, Short([]byte(key)), r.Tenant, r.User, r.SID)
	}
	return nil
}

// Evicted is the choice both backends make when a session is recorded:
// given the person's records in the tenant (held, any order) and the
// session being recorded, it returns the records to drop because they have
// expired at now (expired: drop only) and those to drop and revoke to keep
// the person at tenants.MaxSessionsPerUser with the new one (evicted: the
// oldest by Issued, then by SID). A held record with the new one's SID is
// replaced, so it is neither.
func Evicted(held []Session, next Session, now time.Time) (expired, evicted []Session) {
	var live []Session
	for _, r := range held {
		switch {
		case r.SID == next.SID:
		case !r.Expires.After(now):
			expired = append(expired, r)
		default:
			live = append(live, r)
		}
	}
	over := len(live) + 1 - tenants.MaxSessionsPerUser
	if over <= 0 {
		return expired, nil
	}
	slices.SortFunc(live, func(a, b Session) int {
		if c := a.Issued.Compare(b.Issued); c != 0 {
			return c
		}
		return strings.Compare(a.SID, b.SID)
	})
	return expired, live[:over]
}

// Listed orders the records Sessions returns: those not expired at now,
// newest first (by Issued, then by SID).
func Listed(held []Session, now time.Time) []tenants.Session {
	out := make([]tenants.Session, 0, len(held))
	for _, r := range held {
		if r.Expires.After(now) {
			out = append(out, r.ToSession())
		}
	}
	slices.SortFunc(out, func(a, b tenants.Session) int {
		if c := b.Issued.Compare(a.Issued); c != 0 {
			return c
		}
		return strings.Compare(b.SID, a.SID)
	})
	return out
}
