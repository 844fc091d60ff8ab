package main

import (
	"context"
	"fmt"

	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// keyChecker is a store that keeps one value sealed under the master key
// of the first process that asked (etcdstore), so that a process with
// another key is refused even while no tenant exists yet.
type keyChecker interface {
	// MasterKeyCheck stores sealed if the store holds no check value yet,
	// and returns the check value it holds.
	MasterKeyCheck(ctx context.Context, sealed []byte) ([]byte, error)
}

// The etcd store must keep providing the check: a rename would otherwise
// turn it off without a word.
var _ keyChecker = (*etcdstore.Store)(nil)

// keyCheckContext is the sealing context of the check value.
const keyCheckContext = "master-key-check"

// checkMasterKey refuses a master key that does not open what the store
// holds sealed: the check value of a keyChecker store, and every signing
// and SAML key of ts (the store's tenants). A fleet's replicas and the CLI
// beside them must share one --master-key-file; a process with another
// (a replica given a fresh key file, which LoadOrCreateMasterKey creates)
// would otherwise serve tenants whose sessions it cannot sign and seal new
// secrets that no other process can open. The error is one line naming the
// key file and, for a tenant key, the tenant; it never shows key material.
func checkMasterKey(ctx context.Context, st tenants.Store, ts []tenants.Tenant, sealer *seal.Sealer, keyFile string) error {
	mismatch := func(what string) error {
		return fmt.Errorf("master key %s does not open %s: every replica and every command on this store must use the same --master-key-file (the one the store was written with)", keyFile, what)
	}
	if kc, ok := st.(keyChecker); ok {
		mine, err := sealer.Seal([]byte("tenantgate"), keyCheckContext)
		if err != nil {
			return fmt.Errorf("master key check: %w", err)
		}
		stored, err := kc.MasterKeyCheck(ctx, mine)
		if err != nil {
			return fmt.Errorf("master key check: %w", err)
		}
		if !opens(sealer, stored, keyCheckContext) {
			return mismatch("the store's sealed check value")
		}
	}
	if what := unopened(sealer, nil, ts); what != "" {
		return mismatch(what + " in the store")
	}
	return nil
}

// unopened names the first sealed value that sealer does not open: check
// (a master key check value, skipped when nil), then the signing and SAML
// keys of every tenant of ts; "" when it opens them all.
func unopened(sealer *seal.Sealer, check []byte, ts []tenants.Tenant) string {
	if check != nil && !opens(sealer, check, keyCheckContext) {
		return "the sealed check value"
	}
	for _, t := range ts {
		for _, k := range t.Keys {
			if !opens(sealer, k.SealedPrivate, session.SigningKeyContext(t.InternalID)) {
				return fmt.Sprintf("the signing keys of tenant %q", t.ID)
			}
		}
		if k := t.SAMLKey; k != nil {
			if !opens(sealer, k.SealedPrivate, saml.KeyContext(t.InternalID)) {
				return fmt.Sprintf("the SAML key of tenant %q", t.ID)
			}
		}
	}
	return ""
}

// opens reports whether sealer opens sealed under context; the plaintext
// (a private key) is wiped at once.
func opens(sealer *seal.Sealer, sealed []byte, context string) bool {
	p, err := sealer.Open(sealed, context)
	clear(p)
	return err == nil
}
