package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// keyChecker is a store that keeps one value sealed under the master key
// of the first process that asked (both backends), and re-sealed by a
// master key rotation, so that a process with
// another key is refused even while no tenant exists yet.
type keyChecker interface {
	// MasterKeyCheck stores sealed if the store holds no check value yet,
	// and returns the check value it holds.
	MasterKeyCheck(ctx context.Context, sealed []byte) ([]byte, error)
}

// The etcd store must keep providing the check: a rename would otherwise
// turn it off without a word.
var (
	_ keyChecker = (*etcdstore.Store)(nil)
	_ keyChecker = (*boltstore.Store)(nil)
)

// keyCheckContext is the sealing context of the check value.
const keyCheckContext = "master-key-check"

// checkMasterKey refuses a master key that does not open what the store
// holds sealed: every signing and SAML key of ts (the store's tenants),
// then the check value of a keyChecker store. The tenants come first: a
// store written before it kept a check value gets one only from a key
// that opens its tenants. A fleet's replicas and the CLI
// beside them must share one --master-key-file; a process with another
// (a replica given a fresh key file, which LoadOrCreateMasterKey creates)
// would otherwise serve tenants whose sessions it cannot sign and seal new
// secrets that no other process can open. The error is one line naming the
// key file and, for a tenant key, the tenant; it never shows key material.
func checkMasterKey(ctx context.Context, st tenants.Store, ts []tenants.Tenant, sealer *seal.Sealer, keyFile string) error {
	mismatch := func(what string) error {
		return fmt.Errorf("master key %s does not open %s: every replica and every command on this store must use the same --master-key-file (the one the store was written with)", keyFile, what)
	}
	if what := unopened(sealer, nil, ts); what != "" {
		return mismatch(what + " in the store")
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

// checkKeyValue reports an error unless sealer opens the store's master
// key check value (what a master key rotation re-seals first). It is the
// cheap half of checkMasterKey, asked before every admin write that seals:
// a replica whose fleet rotated the master key must not seal new secrets
// under the old one.
func checkKeyValue(ctx context.Context, st tenants.Store, sealer *seal.Sealer, keyFile string) error {
	kc, ok := st.(keyChecker)
	if !ok {
		return nil
	}
	mine, err := sealer.Seal([]byte("tenantgate"), keyCheckContext)
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	stored, err := kc.MasterKeyCheck(ctx, mine)
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	if !opens(sealer, stored, keyCheckContext) {
		return fmt.Errorf("master key %s no longer opens the store (was the master key rotated elsewhere?): put the new key in --master-key-file; this server takes it up within %s", keyFile, masterKeyPoll)
	}
	return nil
}

// masterKeyPoll is how often serve checks that its master key still opens
// the store.
const masterKeyPoll = 5 * time.Second

// keyFollower keeps a server's master key that of its store: when the
// store's check value no longer opens (a master key rotation by another
// process: the CLI on an etcd store, or another replica), it re-reads
// --master-key-file and takes up the key there if that opens it
// (seal.Sealer.Replace). Until then it logs one error; sessions keep
// verifying (that needs no private key) but sign-ins that need a key or
// secret this server has not opened yet fail.
type keyFollower struct {
	store   tenants.Store
	sealer  *seal.Sealer
	keyFile string
	log     *slog.Logger
	every   time.Duration

	warned bool
}

func (f *keyFollower) run(ctx context.Context) {
	tick := time.NewTicker(f.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f.check(ctx)
		}
	}
}

// check is one round of run.
func (f *keyFollower) check(ctx context.Context) {
	kc, ok := f.store.(keyChecker)
	if !ok {
		return
	}
	mine, err := f.sealer.Seal([]byte("tenantgate"), keyCheckContext)
	if err != nil {
		return
	}
	stored, err := kc.MasterKeyCheck(ctx, mine)
	if err != nil || opens(f.sealer, stored, keyCheckContext) {
		// Unreachable store: the staleness guard's business.
		f.warned = f.warned && err != nil
		return
	}
	n, err := seal.LoadMasterKey(f.keyFile)
	if err == nil && opens(n, stored, keyCheckContext) && f.sealer.Replace(n) == nil {
		f.log.Info("master key rotated: took up the new key from --master-key-file", "master_key_file", f.keyFile)
		f.warned = false
		return
	}
	if !f.warned {
		f.log.Error("the store is sealed under another master key than this server's (rotated elsewhere?): put the new key in --master-key-file; until then sign-ins may fail",
			"master_key_file", f.keyFile)
		f.warned = true
	}
}
