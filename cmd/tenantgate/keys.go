package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// defaultRetireAfter is how long the keys a rotation replaces keep
// verifying by default: the longest session any server may have signed
// with them (session.MaxTTL, whatever --session-ttl was), plus the
// verifiers' leeway and a margin for clocks (session.RevocationExpires).
var defaultRetireAfter = session.RevocationExpires(time.Time{}.Add(session.MaxTTL)).Sub(time.Time{})

// rotateKeysRequest is `keys rotate`: one tenant, or every tenant (All).
// RetireAfter, when set, replaces defaultRetireAfter.
type rotateKeysRequest struct {
	TenantID    string
	All         bool
	RetireAfter *time.Duration
}

// rotatedKey is what `keys rotate` did to one tenant.
type rotatedKey struct {
	Tenant string `json:"tenant"`
	KID    string `json:"kid"`
	// RetireAt is when the keys the rotation replaced stop verifying.
	RetireAt time.Time `json:"retireAt"`
}

func (r rotatedKey) String() string {
	return fmt.Sprintf("tenant %s: new signing key %s; older keys verify until %s", r.Tenant, r.KID, r.RetireAt.UTC().Format(time.RFC3339))
}

// masterKeyResult is what `master-key rotate` did.
type masterKeyResult struct {
	Tenants int `json:"tenants"`
}

func newKeysCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Rotate tenants' session signing keys",
	}
	sf.register(cmd)
	cmd.AddCommand(newKeysRotateCmd(&sf))
	return cmd
}

func newKeysRotateCmd(sf *storeFlags) *cobra.Command {
	var req rotateKeysRequest
	var retireAfter time.Duration
	cmd := &cobra.Command{
		Use:   "rotate (--tenant ID | --all) [--retire-after DURATION]",
		Short: "Give a tenant (or every tenant) a new current session signing key",
		Long: fmt.Sprintf(`Give the tenant a new signing key: every session signed from now on carries its kid.
The keys it replaces keep verifying the sessions they signed, and stay in the tenant's JWKS,
until --retire-after from now (default %s: the longest session any server can sign, %s,
plus the verifiers' leeway and a margin for clocks); then they verify nothing and the next
rotation removes them. A shorter --retire-after ends older sessions early: 0 ends every
session signed before the rotation at once (a leaked key). Running servers pick the new key
up from the store without a restart.`, defaultRetireAfter, session.MaxTTL),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (req.TenantID == "") == !req.All {
				return errors.New("keys rotate needs --tenant ID or --all (not both)")
			}
			if cmd.Flags().Changed("retire-after") {
				req.RetireAfter = &retireAfter
			}
			if err := checkRetireAfter(req.RetireAfter); err != nil {
				return err
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			done, err := a.rotateKeys(cmd.Context(), req)
			for _, r := range done {
				fmt.Fprintln(cmd.OutOrStdout(), r)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&req.TenantID, "tenant", "", "the tenant whose key to rotate")
	cmd.Flags().BoolVar(&req.All, "all", false, "rotate the key of every tenant")
	cmd.Flags().DurationVar(&retireAfter, "retire-after", defaultRetireAfter, "how long the replaced keys keep verifying (0: not at all)")
	return cmd
}

// checkRetireAfter refuses a negative --retire-after and one past the
// default, which no session can outlive.
func checkRetireAfter(d *time.Duration) error {
	if d != nil && (*d < 0 || *d > defaultRetireAfter) {
		return refuse(http.StatusBadRequest, "--retire-after %s: must be between 0 and %s (no session lives longer)", *d, defaultRetireAfter)
	}
	return nil
}

func newMasterKeyCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "master-key",
		Short: "Rotate the master key that seals signing keys and secrets at rest",
	}
	sf.register(cmd)
	cmd.AddCommand(newMasterKeyRotateCmd(&sf))
	return cmd
}

func newMasterKeyRotateCmd(sf *storeFlags) *cobra.Command {
	var newKeyFile string
	cmd := &cobra.Command{
		Use:   "rotate --new-key-file PATH",
		Short: "Re-seal every secret and signing key under a new master key, in one transaction",
		Long: `Re-seal every signing key, SAML key and client secret of every tenant, and the store's
master key check value, under the master key in --new-key-file, in one transaction: afterwards
the store opens with the new key only. --new-key-file is created (mode 0600, fresh random key)
if it does not exist; an existing file must hold a valid key, readable by its owner only,
other than the current one. Signing keys are not changed, only re-sealed: every session stays
valid.

With --db or --etcd-*, --master-key-file is the current key and stays as it is: from now on
give every command and server --master-key-file pointing at the new key (keep the old file as
long as you keep backups made before the rotation). With --server, the new key is sent to the
server, which re-seals its store, writes the new key over its own --master-key-file and uses
it at once, without a restart. Other replicas of an etcd fleet take up the new key when it
appears in their own --master-key-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newKeyFile == "" {
				return errors.New("master-key rotate needs --new-key-file PATH")
			}
			if samePath(newKeyFile, sf.masterKeyFile) {
				return fmt.Errorf("--new-key-file %s is --master-key-file: give the new key its own file", newKeyFile)
			}
			if _, err := seal.LoadOrCreateMasterKey(newKeyFile); err != nil {
				return fmt.Errorf("--new-key-file: %w", err)
			}
			content, err := os.ReadFile(newKeyFile)
			if err != nil {
				return fmt.Errorf("--new-key-file: %w", err)
			}
			defer clear(content)
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			res, err := a.rotateMasterKey(cmd.Context(), content)
			if err != nil {
				return err
			}
			if _, remote := a.(*remoteAdmin); remote {
				fmt.Fprintf(cmd.OutOrStdout(), "re-sealed %d tenants under the new master key; the server now uses it and has written it to its --master-key-file\n", res.Tenants)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "re-sealed %d tenants under the master key in %s; use --master-key-file %s from now on (%s no longer opens this store)\n",
					res.Tenants, newKeyFile, newKeyFile, sf.masterKeyFile)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&newKeyFile, "new-key-file", "", "file holding the new master key; created (0600) if missing")
	return cmd
}

// samePath reports whether a and b name the same file, by path or, when
// both exist, by identity.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// rotateKeys rotates the signing key of one tenant or of all, in a write of
// its own each. It returns what it did, also when a later tenant fails.
func (a *localAdmin) rotateKeys(ctx context.Context, req rotateKeysRequest) ([]rotatedKey, error) {
	if err := checkRetireAfter(req.RetireAfter); err != nil {
		return nil, err
	}
	a.sealing.RLock()
	defer a.sealing.RUnlock()
	sealer, err := a.sealer()
	if err != nil {
		return nil, err
	}
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	ids := []string{req.TenantID}
	if req.All {
		ts, err := st.Tenants(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		ids = ids[:0]
		for _, t := range ts {
			ids = append(ids, t.ID)
		}
	}
	done := []rotatedKey{}
	defer func() {
		if len(done) > 0 {
			a.wrote(ctx)
		}
	}()
	for _, id := range ids {
		now := a.now()
		retire := now.Add(defaultRetireAfter)
		if req.RetireAfter != nil {
			retire = now.Add(*req.RetireAfter)
		}
		key, err := st.RotateKey(ctx, id, tenants.KeyRotation{
			NewKey:   func(iid string) (tenants.SigningKey, error) { return session.NewSigningKey(sealer, iid, now) },
			RetireAt: retire,
			Now:      now,
		})
		switch {
		case errors.Is(err, tenants.ErrNotFound):
			return done, refuse(http.StatusNotFound, "tenant %q not found", id)
		case errors.Is(err, tenants.ErrTooManyKeys):
			return done, &requestError{status: http.StatusConflict, err: err}
		case err != nil:
			return done, fmt.Errorf("rotate signing key of tenant %q: %w", id, err)
		}
		done = append(done, rotatedKey{Tenant: id, KID: key.KID, RetireAt: retire.UTC()})
		if err := a.record(ctx, tenants.AuditEvent{Tenant: id, Event: tenants.AuditKeysRotated, Subject: key.KID}); err != nil {
			return done, err
		}
	}
	return done, nil
}

// rotateMasterKey re-seals every sealed value of the store under the key
// in keyFile (the content of a master key file), in one write: each value
// is opened with the current master key, which must open them all (else
// nothing changes), and sealed again under the new one. In serve,
// keyRotated then makes the new key the server's.
func (a *localAdmin) rotateMasterKey(ctx context.Context, keyFile []byte) (masterKeyResult, error) {
	n, err := seal.ParseMasterKey(keyFile)
	if err != nil {
		return masterKeyResult{}, refuse(http.StatusBadRequest, "new master key: %v", err)
	}
	// No secret may be sealed under the old key while, or after, the
	// store is re-sealed under the new one.
	a.sealing.Lock()
	defer a.sealing.Unlock()
	old, err := a.sealer()
	if err != nil {
		return masterKeyResult{}, err
	}
	if old.SameKey(n) {
		return masterKeyResult{}, refuse(http.StatusConflict, "the new master key is the current one: generate a new key file")
	}
	st, err := a.store()
	if err != nil {
		return masterKeyResult{}, err
	}
	var res masterKeyResult
	err = st.Reseal(ctx, tenants.Reseal{
		Tenant: func(t *tenants.Tenant) error {
			res.Tenants++
			return resealTenant(t, old, n)
		},
		Factor: func(tenantInternalID, userID string, sealed []byte) ([]byte, error) {
			ctx := seal.TOTPContext(tenantInternalID, userID)
			pt, err := old.Open(sealed, ctx)
			if err != nil {
				return nil, fmt.Errorf("does not open under the current master key: %w", err)
			}
			defer clear(pt)
			return n.Seal(pt, ctx)
		},
		Check: func(stored []byte) ([]byte, error) {
			if stored != nil && !opens(old, stored, keyCheckContext) {
				return nil, errors.New("the current master key does not open the store's check value")
			}
			return n.Seal([]byte("tenantgate"), keyCheckContext)
		},
	})
	if err != nil {
		return masterKeyResult{}, fmt.Errorf("master key rotation: nothing changed: %w", err)
	}
	if a.keyRotated != nil {
		err = a.keyRotated(n)
	}
	a.wrote(ctx)
	return res, err
}

// resealTenant replaces every sealed value of t (signing keys, SAML key,
// method client secrets) by the same plaintext sealed under n, each with
// the context it was sealed with. Errors name the tenant's value, never
// its content; plaintext is wiped as soon as it is sealed again.
func resealTenant(t *tenants.Tenant, old, n *seal.Sealer) error {
	reseal := func(sealed []byte, context, what string) ([]byte, error) {
		pt, err := old.Open(sealed, context)
		if err != nil {
			return nil, fmt.Errorf("%s does not open under the current master key: %w", what, err)
		}
		defer clear(pt)
		return n.Seal(pt, context)
	}
	var err error
	for i := range t.Keys {
		k := &t.Keys[i]
		if k.SealedPrivate, err = reseal(k.SealedPrivate, session.SigningKeyContext(t.InternalID), "signing key "+k.KID); err != nil {
			return err
		}
	}
	if k := t.SAMLKey; k != nil {
		if k.SealedPrivate, err = reseal(k.SealedPrivate, saml.KeyContext(t.InternalID), "the SAML key"); err != nil {
			return err
		}
	}
	for i := range t.Methods {
		m := &t.Methods[i]
		if len(m.Sealed) == 0 {
			continue
		}
		if m.Sealed, err = reseal(m.Sealed, seal.SecretContext(t.InternalID), fmt.Sprintf("methods[%d] client secret", i)); err != nil {
			return err
		}
	}
	return nil
}

func (c *remoteAdmin) rotateKeys(ctx context.Context, req rotateKeysRequest) ([]rotatedKey, error) {
	body := map[string]string{}
	if req.RetireAfter != nil {
		body["retireAfter"] = req.RetireAfter.String()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("admin API request: %w", err)
	}
	path := "/keys/rotate"
	if !req.All {
		p, err := tenantPath(req.TenantID)
		if err != nil {
			return nil, err
		}
		path = p + "/keys/rotate"
	}
	data, err := c.do(ctx, http.MethodPost, path, nil, b, "application/json")
	if err != nil {
		return nil, err
	}
	var out []rotatedKey
	return out, decodeAnswer(data, &out)
}

func (c *remoteAdmin) rotateMasterKey(ctx context.Context, keyFile []byte) (masterKeyResult, error) {
	b, err := json.Marshal(map[string]string{"key": string(bytes.TrimSpace(keyFile))})
	if err != nil {
		return masterKeyResult{}, fmt.Errorf("admin API request: %w", err)
	}
	defer clear(b)
	data, err := c.do(ctx, http.MethodPost, "/master-key/rotate", nil, b, "application/json")
	if err != nil {
		return masterKeyResult{}, err
	}
	var r masterKeyResult
	return r, decodeAnswer(data, &r)
}

// rotateKeys: POST /admin/v1/tenants/{id}/keys/rotate (one tenant) and
// POST /admin/v1/keys/rotate (every tenant), with an optional JSON body
// {"retireAfter": "DURATION"}; 200 with the rotatedKey of each tenant.
func (a *adminAPI) rotateKeys(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r, maxAdminJSON, "request body")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body struct {
		RetireAfter *string `json:"retireAfter"`
	}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || dec.More() {
			a.fail(w, r, refuse(http.StatusBadRequest, `request body: want {"retireAfter": "DURATION"} or nothing`))
			return
		}
	}
	req := rotateKeysRequest{TenantID: r.PathValue("id"), All: r.PathValue("id") == ""}
	if body.RetireAfter != nil {
		d, err := time.ParseDuration(*body.RetireAfter)
		if err != nil {
			a.fail(w, r, refuse(http.StatusBadRequest, "retireAfter: not a duration"))
			return
		}
		req.RetireAfter = &d
	}
	done, err := a.ops.rotateKeys(r.Context(), req)
	for _, k := range done {
		a.log.InfoContext(r.Context(), "signing key rotated", "tenant", k.Tenant, "kid", k.KID, "retire_at", k.RetireAt, "remote", r.RemoteAddr)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusOK, done)
}

// rotateMasterKey: POST /admin/v1/master-key/rotate with the JSON body
// {"key": "<the content of a master key file>"}; 200 {"tenants": N}. The
// key is never logged or answered.
func (a *adminAPI) rotateMasterKey(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r, maxAdminJSON, "request body")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer clear(data)
	var body struct {
		Key string `json:"key"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || dec.More() || body.Key == "" {
		// The decoder's message may quote the body, which holds the key.
		a.fail(w, r, refuse(http.StatusBadRequest, `request body: want one JSON object {"key": "<master key file content>"} and nothing else`))
		return
	}
	res, err := a.ops.rotateMasterKey(r.Context(), []byte(body.Key))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "master key rotated", "tenants", res.Tenants, "remote", r.RemoteAddr)
	writeAdminJSON(w, http.StatusOK, res)
}

// takeUpMasterKey is serve's localAdmin.keyRotated: after its store was
// re-sealed under n, the server writes n over its --master-key-file (so a
// restart opens the store) and seals and opens with n from now on. The
// key is taken up even when the file cannot be written, since the store
// opens with n alone; the error then says where the key must go.
func takeUpMasterKey(sealer *seal.Sealer, keyFile string, log *slog.Logger) func(*seal.Sealer) error {
	return func(n *seal.Sealer) error {
		werr := seal.WriteMasterKeyFile(keyFile, n)
		if err := sealer.Replace(n); err != nil {
			return fmt.Errorf("take up the new master key: %w", err)
		}
		if werr != nil {
			log.Error("master key rotated, but the server could not write it to --master-key-file: copy the new key file there before the next restart", "master_key_file", keyFile, "err", werr)
			return fmt.Errorf("the store is re-sealed and the server uses the new key, but writing it to the server's --master-key-file failed (copy the new key file to %s before restarting the server): %w", keyFile, werr)
		}
		log.Info("master key rotated: the store is re-sealed and the new key written to --master-key-file", "master_key_file", keyFile)
		return nil
	}
}
