package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// tenantByInternalID finds a tenant record by internal id in t, or returns
// nil. The snapshot, when this Store follows one, names the slug, and only
// that record is read (and made a condition of the commit); otherwise every
// tenant is read, the whole range being the condition.
func (s *Store) tenantByInternalID(t *txn, internalID string) (*record.Tenant, error) {
	s.mu.Lock()
	hot := s.f.hot
	s.mu.Unlock()
	if hot != nil {
		if tn := hot.ByInternalID(internalID); tn != nil {
			r, err := s.getTenant(t, tn.ID)
			if err != nil {
				return nil, err
			}
			if r != nil && r.InternalID == internalID {
				return r, nil
			}
		}
	}
	all, err := t.scan(s.nsPrefix(nsTenants))
	if err != nil {
		return nil, err
	}
	for _, kv := range all {
		var r record.Tenant
		if err := s.decode(string(kv.Key), kv.Value, &r); err != nil {
			return nil, err
		}
		if r.InternalID == internalID {
			// The record itself is a condition too, so that its deletion
			// is seen.
			return s.getTenant(t, r.ID)
		}
	}
	return nil, nil
}

// UpsertExternalUser creates or updates the user an SSO method of the
// tenant identified; see tenants.Store. The identity key is created only if
// absent, so two processes signing in the same new identity at once make
// one user. The user and the membership are written in the same
// transaction as the identity.
func (s *Store) UpsertExternalUser(ctx context.Context, tenantInternalID string, x tenants.ExternalIdentity) (tenants.User, error) {
	if tenantInternalID == "" || x.Method == "" || x.Issuer == "" || x.Subject == "" {
		return tenants.User{}, errors.New("upsert external user: tenant, method, issuer and subject must be set")
	}
	email := record.NormalizeEmail(x.Email)
	roles := slices.Clone(x.Roles)
	if roles == nil {
		roles = []string{}
	}
	var out tenants.User
	err := s.update(ctx, func(t *txn) error {
		tr, err := s.tenantByInternalID(t, tenantInternalID)
		if err != nil {
			return err
		}
		if tr == nil {
			return notFound("tenant with internal id %q", tenantInternalID)
		}
		key := s.key(nsExternals, record.ExternalKey(tenantInternalID, x.Method, x.Issuer, x.Subject))
		var xr record.External
		found, err := t.getRecord(key, &xr)
		if err != nil {
			return err
		}
		var u record.User
		if found {
			ok, err := t.getRecord(s.key(nsUsers, xr.UserID), &u)
			if err != nil {
				return err
			}
			if !ok {
				return corrupt("external identity %s names missing user", record.Short([]byte(key)))
			}
			if !u.External || u.Tenant != tenantInternalID {
				return corrupt("external identity %s names a user of another kind", record.Short([]byte(key)))
			}
		} else {
			id, err := s.newID()
			if err != nil {
				return err
			}
			u = record.User{V: record.Version, ID: id, Created: s.now(), External: true, Tenant: tenantInternalID}
			xr = record.External{V: record.Version, Tenant: tenantInternalID, Method: x.Method,
				Issuer: x.Issuer, Subject: x.Subject, UserID: id, Created: u.Created}
			if err := t.putRecord(key, &xr); err != nil {
				return fmt.Errorf("external identity: %w", err)
			}
		}
		u.Email = email
		if err := t.putRecord(s.key(nsUsers, u.ID), &u); err != nil {
			return fmt.Errorf("external user: %w", err)
		}
		if err := s.putMembership(t, tenantInternalID, u.ID, roles); err != nil {
			return fmt.Errorf("membership of external user in tenant %q: %w", tr.ID, err)
		}
		out = u.ToUser()
		out.FirstSeen = !found
		return nil
	})
	if err != nil {
		return tenants.User{}, err
	}
	return out, nil
}

// UseAssertionID records a used SAML assertion id (or spent switch code);
// see tenants.Store. The record is created only if absent (or replaces one
// that has expired, compared by its revision), so of any number of
// processes spending the same id at once exactly one succeeds and the
// others get an error wrapping tenants.ErrReplay. It lives on a lease that
// etcd ends after expires (lease.go).
func (s *Store) UseAssertionID(ctx context.Context, tenantInternalID, id string, expires time.Time) error {
	switch {
	case tenantInternalID == "" || id == "":
		return errors.New("use assertion id: tenant and id must be set")
	case len(id) > tenants.MaxAssertionIDLen:
		return fmt.Errorf("use assertion id: id longer than %d bytes", tenants.MaxAssertionIDLen)
	case expires.IsZero():
		return errors.New("use assertion id: expiry must be set")
	}
	key := s.key(nsAssertions, record.AssertionKey(tenantInternalID, id))
	return s.update(ctx, func(t *txn) error {
		var prev record.Assertion
		found, err := t.getRecord(key, &prev)
		if err != nil {
			return err
		}
		if found && !prev.Expires.Before(s.now()) {
			return fmt.Errorf("assertion id for tenant %s: %w", tenantInternalID, tenants.ErrReplay)
		}
		v, err := record.Encode(&record.Assertion{V: record.Version, Expires: expires})
		if err != nil {
			return err
		}
		lease, err := s.leases.forUntil(t.ctx, expires)
		if err != nil {
			return err
		}
		t.putLeased(key, v, lease)
		return nil
	})
}
