package signin

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
)

// A method's configuration is its package's Config (a tenants.MethodConfig),
// kept by the store as opaque bytes in tenants.Method.Config. The method's
// package decodes it when it opens (Entry), seals its secrets before the
// store writes them (SecretConfig, SealMethods) and opens them again
// (OpenClientSecret).

// ErrNotOffered is wrapped by an Opener for a method entry that is stored
// but cannot sign anyone in yet (a social method named before its OAuth app
// exists). The sign-in pages leave such a method off; it is no failure.
var ErrNotOffered = errors.New("sign-in method not offered yet")

// NotOfferedConfig is a Config that may be stored before its method can be
// offered (its Opener then returns ErrNotOffered).
type NotOfferedConfig interface {
	tenants.MethodConfig
	// NotOffered says, for the operator, why the method is not offered
	// and what would change that, starting with what the entry is
	// ("(social github) has no clientID: …"); "" when it is offered.
	NotOffered() string
}

// NotOffered returns why method entry m is stored but not offered yet, or
// "" when it is offered: its type's Config (in types) decides, when it is a
// NotOfferedConfig. An entry of an unknown type, or whose Config does not
// decode, counts as offered: opening it reports what is wrong.
func NotOffered(types tenants.MethodTypes, m tenants.Method) string {
	mt, ok := types.Lookup(m.Type)
	if !ok {
		return ""
	}
	cfg := mt.NewConfig()
	if m.DecodeConfig(cfg) != nil {
		return ""
	}
	if c, ok := cfg.(NotOfferedConfig); ok {
		return c.NotOffered()
	}
	return ""
}

// SecretConfig is a Config that may carry an OAuth client secret in
// plaintext, as a tenant file gives it. The store never keeps it so:
// SealMethods seals it into tenants.Method.Sealed.
type SecretConfig interface {
	tenants.MethodConfig
	// TakeClientSecret returns the plaintext client secret and removes it
	// from the Config ("" when there is none).
	TakeClientSecret() string
	// NeedsClientSecret reports whether a stored entry must hold a sealed
	// client secret.
	NeedsClientSecret() bool
}

// SealMethods returns tenants.ApplyOptions.SealMethod for the method types
// in types: it decodes an entry's Config with its type's Config, and for a
// SecretConfig seals the plaintext client secret a tenant file gave
// (seal.SealSecret, bound to the tenant) into Sealed, or, when there is
// none, keeps prev's sealed one (the stored entry at the same position, when
// it has the same type). It then stores the Config again, without the
// plaintext, as the type encodes it. An entry that needs a client secret and
// is left without one is a tenants.FieldError for clientSecret wrapping
// tenants.ErrSecretRequired.
func SealMethods(s *seal.Sealer, types tenants.MethodTypes) func(m tenants.Method, prev *tenants.Method, tenantInternalID string) (tenants.Method, error) {
	return func(m tenants.Method, prev *tenants.Method, tenantInternalID string) (tenants.Method, error) {
		mt, ok := types.Lookup(m.Type)
		if !ok {
			return tenants.Method{}, fmt.Errorf("unknown method type %q", m.Type)
		}
		cfg := mt.NewConfig()
		if err := m.DecodeConfig(cfg); err != nil {
			return tenants.Method{}, err
		}
		m.Sealed = nil
		if sc, ok := cfg.(SecretConfig); ok {
			switch plain := sc.TakeClientSecret(); {
			case plain != "":
				sealed, err := seal.SealSecret(s, []byte(plain), tenantInternalID)
				if err == nil && len(sealed) == 0 {
					err = errors.New("sealing produced nothing")
				}
				if err != nil {
					return tenants.Method{}, &tenants.FieldError{Field: "clientSecret", Err: err}
				}
				m.Sealed = sealed
			case prev != nil:
				m.Sealed = bytes.Clone(prev.Sealed)
			}
			if sc.NeedsClientSecret() && len(m.Sealed) == 0 {
				return tenants.Method{}, &tenants.FieldError{Field: "clientSecret", Err: fmt.Errorf(
					"missing (a %s method needs one; it is kept from the stored tenant only for a %[1]s method at the same position): %w",
					m.Type, tenants.ErrSecretRequired)}
			}
		}
		if err := m.EncodeConfig(cfg); err != nil {
			return tenants.Method{}, err
		}
		return m, nil
	}
}

// OpenerFor returns the Opener of method type typ: it decodes the entry's
// Config into a new C (Entry) and has open make the Method of it. Every
// error names the type, the entry and the tenant ("open oidc method 1 of
// tenant acme: …").
func OpenerFor[C any, PC interface {
	*C
	tenants.MethodConfig
}](typ string, open func(ctx context.Context, c PC, t *tenants.Tenant, index int, m tenants.Method) (Method, error)) Opener {
	return func(ctx context.Context, t *tenants.Tenant, index int) (Method, error) {
		var c C
		m, err := Entry(t, index, typ, PC(&c))
		var opened Method
		if err == nil {
			opened, err = open(ctx, &c, t, index, m)
		}
		if err != nil {
			tid := ""
			if t != nil {
				tid = t.ID
			}
			return nil, fmt.Errorf("open %s method %d of tenant %s: %w", typ, index, tid, err)
		}
		return opened, nil
	}
}

// Entry returns method entry index of tenant t, checking that it is of type
// typ and that t has an internal id, and decodes its Config into cfg (a field
// cfg does not have is an error): the first step of every Opener.
func Entry(t *tenants.Tenant, index int, typ string, cfg tenants.MethodConfig) (tenants.Method, error) {
	switch {
	case t == nil || index < 0 || index >= len(t.Methods):
		return tenants.Method{}, errors.New("no such method")
	case t.InternalID == "":
		return tenants.Method{}, errors.New("tenant has no internal id")
	case t.Methods[index].Type != typ:
		return tenants.Method{}, fmt.Errorf("method type is %q, not %q", t.Methods[index].Type, typ)
	}
	m := t.Methods[index]
	if err := m.DecodeConfig(cfg); err != nil {
		return tenants.Method{}, err
	}
	return m, nil
}

// OpenClientSecret returns the client secret of method entry m of the
// tenant with the given internal id: Sealed opened with s
// (seal.OpenSecret), or "" for a public client that has none. plaintext is
// what the entry's Config still holds in the clear, which only an entry
// that skipped SealMethods has: that is an error, never a secret to use.
func OpenClientSecret(s *seal.Sealer, m tenants.Method, plaintext, tenantInternalID string) (string, error) {
	switch {
	case len(m.Sealed) > 0:
		if s == nil {
			return "", errors.New("clientSecret: no sealer configured")
		}
		pt, err := seal.OpenSecret(s, m.Sealed, tenantInternalID)
		if err != nil {
			return "", fmt.Errorf("clientSecret: %w", err)
		}
		return string(pt), nil
	case plaintext != "":
		return "", errors.New("clientSecret: present but not sealed")
	}
	return "", nil
}

// ChangeConfig is a Config that has something to say when a stored entry
// of its type is replaced: a change that re-keys the accounts the method
// signs in to (saml: nameIDFormat, subjectAttribute).
type ChangeConfig interface {
	tenants.MethodConfig
	// CheckChange compares the receiver, what the entry becomes, with
	// stored, the entry as stored (a Config of the same type). It returns
	// a warning for the operator ("" for none) or an error refusing the
	// change: a *tenants.FieldError naming the field, wrapping
	// tenants.ErrChangeRefused.
	CheckChange(stored tenants.MethodConfig) (warning string, err error)
}

// CheckChanges returns tenants.ApplyOptions.CheckChange for the method
// types in types: every method entry of the tenant as applied whose Config
// is a ChangeConfig is compared with the stored entry it replaces, which
// is the stored entry at the same position when it has the same type, else
// the only stored entry of that type when the tenant has one of that type
// both before and after (a moved saml method is still the same one). An
// entry with nothing stored to replace, or either Config not decoding
// (Validate reports the new one; a stored one that does not decode is the
// opener's to report), is not compared. Warnings and the field of an
// error name the entry: "methods[1] (saml): …", "methods[1].nameIDFormat".
func CheckChanges(types tenants.MethodTypes) func(stored, next *tenants.Tenant) ([]string, error) {
	return func(stored, next *tenants.Tenant) ([]string, error) {
		var warnings []string
		for i, m := range next.Methods {
			mt, ok := types.Lookup(m.Type)
			if !ok {
				continue
			}
			prev, ok := replacedEntry(stored, next, i)
			if !ok {
				continue
			}
			cfg, old := mt.NewConfig(), mt.NewConfig()
			cc, ok := cfg.(ChangeConfig)
			if !ok || m.DecodeConfig(cfg) != nil || prev.DecodeConfig(old) != nil {
				continue
			}
			// The types that refuse changes (saml) are one per tenant, so
			// the first refusal is the tenant's only one.
			w, err := cc.CheckChange(old)
			if fe := (*tenants.FieldError)(nil); errors.As(err, &fe) {
				return nil, &tenants.FieldError{Field: fmt.Sprintf("methods[%d].%s", i, fe.Field), Err: fe.Err}
			}
			if err != nil {
				return nil, fmt.Errorf("methods[%d]: %w", i, err)
			}
			if w != "" {
				warnings = append(warnings, fmt.Sprintf("methods[%d] (%s): %s", i, m.Type, w))
			}
		}
		return warnings, nil
	}
}

// replacedEntry returns the stored entry that entry i of next replaces
// (see CheckChanges).
func replacedEntry(stored, next *tenants.Tenant, i int) (tenants.Method, bool) {
	typ := next.Methods[i].Type
	if i < len(stored.Methods) && stored.Methods[i].Type == typ {
		return stored.Methods[i], true
	}
	count := func(ms []tenants.Method) (n, at int) {
		for j, m := range ms {
			if m.Type == typ {
				n, at = n+1, j
			}
		}
		return n, at
	}
	ns, at := count(stored.Methods)
	if nn, _ := count(next.Methods); ns == 1 && nn == 1 {
		return stored.Methods[at], true
	}
	return tenants.Method{}, false
}
