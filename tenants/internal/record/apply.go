package record

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// CheckBatch refuses what no store state could make valid: empty names,
// and a slug, domain or email domain claimed twice within the batch
// (tenants.ErrConflict). Backends call it before they read anything.
func CheckBatch(ts []tenants.Tenant) error {
	ids := map[string]bool{}
	owners := map[string]map[string]string{"domains": {}, "emailDomains": {}}
	for i := range ts {
		t := &ts[i]
		if t.ID == "" {
			return fmt.Errorf("tenants[%d]: id is empty", i)
		}
		if ids[t.ID] {
			return fmt.Errorf("tenant %q appears twice in the batch: %w", t.ID, tenants.ErrConflict)
		}
		ids[t.ID] = true
		for field, values := range map[string][]string{"domains": t.Domains, "emailDomains": t.EmailDomains} {
			for _, v := range values {
				if v == "" {
					return fmt.Errorf("tenant %q: %s: empty value", t.ID, field)
				}
				if owner, ok := owners[field][v]; ok && owner != t.ID {
					return fmt.Errorf("tenant %q: %s: %q is also claimed by tenant %q in the same batch: %w",
						t.ID, field, v, owner, tenants.ErrConflict)
				}
				owners[field][v] = t.ID
			}
		}
	}
	return nil
}

// ApplyTenant is the record tenants.Store.ApplyTenants writes for t: t's
// configuration, with prev's identity (InternalID, Keys, Created, SAMLKey)
// when the tenant exists (prev not nil), else a new internal id from newID,
// a first signing key from opts.NewKey and Created now. Every method goes
// through opts.SealMethod with prev's entry at the same position when it
// has the same type; the input's Sealed bytes are ignored. A tenant with a
// saml method and no SAMLKey gets one from opts.NewSAMLKey. Errors name the
// tenant (and the method entry); an error from a callback aborts.
//
// An existing tenant goes through opts.CheckChange first, with prev as
// stored and t: its warnings are returned, its error aborts.
//
// It is the one place both backends make a tenant record, so that they
// cannot differ in what an apply keeps, seals, creates or refuses.
func ApplyTenant(t *tenants.Tenant, prev *Tenant, opts tenants.ApplyOptions, newID func() (string, error), now time.Time) (Tenant, []string, error) {
	var warnings []string
	if prev != nil && opts.CheckChange != nil {
		stored := prev.ToTenant()
		w, err := opts.CheckChange(&stored, t)
		if fe := (*tenants.FieldError)(nil); errors.As(err, &fe) {
			return Tenant{}, nil, fmt.Errorf("tenant %q: %s: %w", t.ID, fe.Field, fe.Err)
		}
		if err != nil {
			return Tenant{}, nil, fmt.Errorf("tenant %q: %w", t.ID, err)
		}
		warnings = w
	}
	rec, err := applyTenant(t, prev, opts, newID, now)
	if err != nil {
		return Tenant{}, nil, err
	}
	return rec, warnings, nil
}

// applyTenant is ApplyTenant after CheckChange.
func applyTenant(t *tenants.Tenant, prev *Tenant, opts tenants.ApplyOptions, newID func() (string, error), now time.Time) (Tenant, error) {
	rec := FromTenant(t)
	if prev != nil {
		rec.InternalID, rec.Keys, rec.Created = prev.InternalID, prev.Keys, prev.Created
		rec.SAMLKey = prev.SAMLKey
	} else {
		id, err := newID()
		if err != nil {
			return Tenant{}, fmt.Errorf("tenant %q: %w", t.ID, err)
		}
		if opts.NewKey == nil {
			return Tenant{}, fmt.Errorf("tenant %q: creating a tenant needs ApplyOptions.NewKey", t.ID)
		}
		key, err := opts.NewKey(id)
		if err != nil {
			return Tenant{}, fmt.Errorf("tenant %q: make signing key: %w", t.ID, err)
		}
		rec.InternalID, rec.Keys, rec.Created = id, []Key{FromKey(key)}, now
	}

	for j, m := range t.Methods {
		// The input's sealed secrets are not trusted: only the method's
		// package (SealMethod) decides what is sealed, from the file's
		// plaintext or the stored entry's.
		m.Sealed = nil
		var prevMethod *tenants.Method
		if prev != nil && j < len(prev.Methods) && prev.Methods[j].Type == m.Type {
			p := prev.Methods[j].ToMethod()
			prevMethod = &p
		}
		if opts.SealMethod != nil {
			sealed, err := opts.SealMethod(m, prevMethod, rec.InternalID)
			if fe := (*tenants.FieldError)(nil); errors.As(err, &fe) {
				return Tenant{}, fmt.Errorf("tenant %q: methods[%d].%s: %w", t.ID, j, fe.Field, fe.Err)
			}
			if err != nil {
				return Tenant{}, fmt.Errorf("tenant %q: methods[%d]: %w", t.ID, j, err)
			}
			if sealed.Type != m.Type {
				return Tenant{}, fmt.Errorf("tenant %q: methods[%d]: SealMethod changed the method's type", t.ID, j)
			}
			m = sealed
		} else if len(m.Config) > 0 {
			return Tenant{}, fmt.Errorf("tenant %q: methods[%d]: a method's configuration needs ApplyOptions.SealMethod", t.ID, j)
		}
		rec.Methods[j] = FromMethod(m)
	}

	if rec.SAMLKey == nil && t.HasMethod(tenants.MethodSAML) {
		if opts.NewSAMLKey == nil {
			return Tenant{}, fmt.Errorf("tenant %q: a saml method needs ApplyOptions.NewSAMLKey", t.ID)
		}
		k, err := opts.NewSAMLKey(rec.InternalID)
		if err != nil {
			return Tenant{}, fmt.Errorf("tenant %q: make saml key: %w", t.ID, err)
		}
		if len(k.Certificate) == 0 || len(k.SealedPrivate) == 0 {
			return Tenant{}, fmt.Errorf("tenant %q: make saml key: empty certificate or key", t.ID)
		}
		rec.SAMLKey = &SAMLKey{
			Certificate:   slices.Clone(k.Certificate),
			SealedPrivate: slices.Clone(k.SealedPrivate),
			Created:       k.Created,
		}
	}
	return rec, nil
}
