package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Schema 1 (tenantgate up to commit aab787b) stored a tenant's methods as
// one record type holding every method type's fields. Schema 2 stores each
// method's own configuration as the opaque bytes its package writes
// (record.Method.Config) and its sealed secrets as opaque bytes (Sealed).
// Open migrates a schema-1 database in one write transaction, after walk
// has checked all of it: every tenant record is rewritten as version 2,
// then the schema record. Nothing else changes: users, memberships,
// revocations, keys and every sealed value keep their bytes, so sessions
// minted before stay valid and sealed secrets open with the same key.
//
// Schema 4 changes no record (record.SchemaVersion says why it exists): a
// schema-3 database is migrated by writing the schema record alone, and
// older ones go straight to 4 in their one transaction.
//
// Schema 3 (record.UpgradeToSchema3) writes nameIDFormat "unspecified" into
// every saml method keyed by its NameID that states none, the format such a
// method had before schema 3. A schema-2 database is migrated the same way
// (one write transaction, after walk), its saml tenants rewritten, and a
// schema-1 one goes straight to 3 in its one transaction.

// tenantRecordV1 is a tenant record as schema 1 wrote it. Only Methods
// differ from version 2.
type tenantRecordV1 struct {
	record.Tenant
	Methods []methodRecordV1 `json:"methods,omitempty"`
}

// RecordVersion is the "v" of a schema-1 tenant record (record.Decode).
func (tenantRecordV1) RecordVersion() int { return 1 }

// methodRecordV1 is a method as schema 1 wrote it.
type methodRecordV1 struct {
	Type  string `json:"type"`
	Label string `json:"label,omitempty"`
	methodConfigV1
	// SealedClientSecret is the client secret sealed under
	// "client-secret:<tenant internal id>": what version 2 keeps in Sealed.
	SealedClientSecret []byte              `json:"sealedClientSecret,omitempty"`
	GroupRoles         map[string][]string `json:"groupRoles,omitempty"`
	DefaultRoles       []string            `json:"defaultRoles,omitempty"`
}

// methodConfigV1 is every method type's own fields as schema 1 kept them,
// in the order tenant files print them. Schema 1 validated each method to
// set only its own type's fields, so the set ones are exactly that type's
// Config, as its package (oidc, saml, social) encodes it.
type methodConfigV1 struct {
	Issuer             string   `json:"issuer,omitempty"`
	ClientID           string   `json:"clientID,omitempty"`
	Scopes             []string `json:"scopes,omitempty"`
	GroupsClaim        string   `json:"groupsClaim,omitempty"`
	IDPMetadataURL     string   `json:"idpMetadataURL,omitempty"`
	IDPMetadataXML     string   `json:"idpMetadataXML,omitempty"`
	EmailAttribute     string   `json:"emailAttribute,omitempty"`
	AllowIDPInitiated  bool     `json:"allowIDPInitiated,omitempty"`
	Provider           string   `json:"provider,omitempty"`
	AuthURL            string   `json:"authURL,omitempty"`
	TokenURL           string   `json:"tokenURL,omitempty"`
	UserinfoURL        string   `json:"userinfoURL,omitempty"`
	IDField            string   `json:"idField,omitempty"`
	EmailField         string   `json:"emailField,omitempty"`
	EmailVerifiedField string   `json:"emailVerifiedField,omitempty"`
}

// upgrade returns the version 2 record of a version 1 one.
func (r *tenantRecordV1) upgrade() (record.Tenant, error) {
	out := r.Tenant
	out.V = record.TenantVersion
	out.Methods = nil
	for _, m := range r.Methods {
		cfg, err := json.Marshal(m.methodConfigV1)
		if err != nil {
			return record.Tenant{}, fmt.Errorf("tenant %q: method config: %w", r.ID, err)
		}
		if string(cfg) == "{}" {
			cfg = nil
		}
		out.Methods = append(out.Methods, record.Method{
			Type: m.Type, Label: m.Label, Config: cfg, Sealed: m.SealedClientSecret,
			GroupRoles: m.GroupRoles, DefaultRoles: m.DefaultRoles,
		})
	}
	return out, nil
}

// readSchema returns the database's schema version: 1 or 2 (to be
// migrated) or record.SchemaVersion. A newer one, or none, is
// tenants.ErrCorrupt.
func readSchema(tx *bolt.Tx) (int, error) {
	raw := tx.Bucket(bucketMeta).Get(keySchema)
	if raw == nil {
		return 0, fmt.Errorf("%w: no schema record", tenants.ErrCorrupt)
	}
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.V == nil {
		return 0, fmt.Errorf("%w: schema record %s is unreadable", tenants.ErrCorrupt, short(raw))
	}
	if v := *head.V; v < 1 || v > record.SchemaVersion {
		return 0, fmt.Errorf("%w: database has schema version %d, this tenantgate reads versions 1 to %d (written by a newer tenantgate?)",
			tenants.ErrCorrupt, v, record.SchemaVersion)
	}
	return *head.V, nil
}

// decodeTenant decodes a stored tenant record of a database at the given
// schema version, upgrading a record of an older schema in memory.
func decodeTenant(schema int, key, data []byte) (*record.Tenant, error) {
	r, _, err := upgradeTenant(schema, key, data)
	return r, err
}

// upgradeTenant decodes a stored tenant record of a database at the given
// schema version and returns it as record.SchemaVersion has it, and
// whether that differs from what is stored (so must be written).
func upgradeTenant(schema int, key, data []byte) (*record.Tenant, bool, error) {
	var r record.Tenant
	if schema == 1 {
		var v1 tenantRecordV1
		if err := decodeRecord(bucketTenants, key, data, &v1); err != nil {
			return nil, false, err
		}
		up, err := v1.upgrade()
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", tenants.ErrCorrupt, err)
		}
		r = up
	} else if err := decodeRecord(bucketTenants, key, data, &r); err != nil {
		return nil, false, err
	}
	changed := schema == 1
	if schema < 3 {
		c, err := record.UpgradeToSchema3(&r)
		if err != nil {
			return nil, false, err
		}
		changed = changed || c
	}
	return &r, changed, nil
}

// migrate brings a database walk has checked from schema version `from` to
// record.SchemaVersion, in one write transaction; it writes nothing when it is
// there already.
func (s *Store) migrate(from int) error {
	if from == record.SchemaVersion {
		return nil
	}
	if from < 1 || from > record.SchemaVersion {
		return errors.New("no migration from schema version " + fmt.Sprint(from))
	}
	err := guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			tb := tx.Bucket(bucketTenants)
			type upgraded struct {
				key []byte
				rec record.Tenant
			}
			var all []upgraded
			err := tb.ForEach(func(k, v []byte) error {
				r, changed, err := upgradeTenant(from, k, v)
				if err != nil || !changed {
					return err
				}
				all = append(all, upgraded{append([]byte(nil), k...), *r})
				return nil
			})
			if err != nil {
				return err
			}
			for _, u := range all {
				if err := putRecord(tb, u.key, &u.rec); err != nil {
					return fmt.Errorf("tenant %s: %w", u.key, err)
				}
			}
			return putRecord(tx.Bucket(bucketMeta), keySchema, &record.Schema{V: record.SchemaVersion})
		})
	})
	if err != nil {
		return fmt.Errorf("migrate database %s from schema %d to %d: %w", s.path, from, record.SchemaVersion, err)
	}
	return nil
}
