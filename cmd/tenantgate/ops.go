package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/audit"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// admin is what the tenants and users commands do. localAdmin does it on a
// store (the CLI's --db mode, and the admin API inside serve); remoteAdmin
// sends it to a running server's admin API (--server), which hands it to its
// own localAdmin. One implementation of each operation, so the two modes
// cannot drift apart.
type admin interface {
	// applyTenants parses, validates and applies a tenant file, all or
	// nothing. allowLoopback is --allow-loopback-http-idp.
	applyTenants(ctx context.Context, file []byte, allowLoopback bool) (applyReport, error)
	listTenants(ctx context.Context) ([]tenantRow, error)
	// getTenant returns one tenant as a tenant file in format "yaml" or
	// "json", without secrets.
	getTenant(ctx context.Context, id, format string) ([]byte, error)
	deleteTenant(ctx context.Context, id string) error
	addUser(ctx context.Context, req addUserRequest) (addUserResult, error)
	listUsers(ctx context.Context, tenantID string) ([]userRow, error)
	deleteUser(ctx context.Context, tenantID, email string) error
	// resetMFA removes a member's second factors in one tenant (users
	// reset-mfa): their next sign-in there enrols again under mfa
	// required, or signs in with the password alone under optional.
	resetMFA(ctx context.Context, tenantID, email string) error
	// rotateKeys is `keys rotate` (keys.go).
	rotateKeys(ctx context.Context, req rotateKeysRequest) ([]rotatedKey, error)
	// rotateMasterKey is `master-key rotate`, given the content of the
	// new key file (keys.go).
	rotateMasterKey(ctx context.Context, keyFile []byte) (masterKeyResult, error)
	// auditEvents lists a tenant's audit events (audit list), verifyAudit
	// checks its chain (audit verify).
	auditEvents(ctx context.Context, q tenants.AuditQuery) ([]tenants.AuditEvent, error)
	verifyAudit(ctx context.Context, tenantID string) (tenants.AuditVerdict, error)
	inviteUser(ctx context.Context, req inviteRequest) (inviteResult, error)
	Close() error
}

// applyReport is what an apply did: one result per tenant, in file order,
// and warnings about methods: risky configurations (configWarnings) and
// methods that are not offered yet.
type applyReport struct {
	Tenants  []applyResult `json:"tenants"`
	Warnings []string      `json:"warnings"`
}

type applyResult struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

// print writes the report as the CLI shows it: one line per tenant on out,
// one warning line per incomplete method on errOut.
func (r applyReport) print(out, errOut io.Writer) {
	for _, t := range r.Tenants {
		verb := "configured"
		if t.Created {
			verb = "created"
		}
		fmt.Fprintf(out, "tenant %s %s\n", t.ID, verb)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(errOut, "tenantgate: warning: %s\n", w)
	}
}

// tenantRow is one tenant in `tenants list`.
type tenantRow struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Domains []string `json:"domains"`
	Methods []string `json:"methods"`
}

func printTenantTable(w io.Writer, rows []tenantRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tDOMAINS\tMETHODS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Status, dash(strings.Join(r.Domains, ",")), strings.Join(r.Methods, ","))
	}
	return tw.Flush()
}

// userRow is one member in `users list`. Password says whether the user has
// one, never what it is.
type userRow struct {
	ID       string   `json:"id"`
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
	Password bool     `json:"password"`
}

func printUserTable(w io.Writer, rows []userRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tROLES\tID")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Email, dash(strings.Join(r.Roles, ",")), r.ID)
	}
	return tw.Flush()
}

// addUserRequest is `users add`. PasswordInput is nil without
// --password-stdin; otherwise it returns the input, which passwordFromInput
// turns into the password. localAdmin calls it only when the user is new:
// an existing user's password never changes, so it is not even read.
type addUserRequest struct {
	TenantID      string
	Email         string
	Roles         []string
	PasswordInput func() ([]byte, error)
}

// addUserResult is what `users add` did.
type addUserResult struct {
	Created bool     `json:"created"`
	Email   string   `json:"email"`
	Tenant  string   `json:"tenant"`
	Roles   []string `json:"roles"`
}

func (r addUserResult) String() string {
	what := "added existing user"
	if r.Created {
		what = "created user"
	}
	return fmt.Sprintf("%s %s to tenant %s with roles [%s]", what, r.Email, r.Tenant, strings.Join(r.Roles, ","))
}

// requestError is a refusal the caller can fix. Its message is shown as is,
// and the admin API answers it with status.
type requestError struct {
	status int
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func refuse(status int, format string, args ...any) error {
	return &requestError{status: status, err: fmt.Errorf(format, args...)}
}

// localAdmin carries out the tenants and users commands on a store.
type localAdmin struct {
	// store returns the store, opening it on first use: a command checks
	// its input before it touches the database.
	store func() (tenants.Store, error)
	// sealer returns the master key's sealer (needed by apply only).
	sealer func() (*seal.Sealer, error)
	// passwords hashes new users' passwords.
	passwords *password.Hasher
	// written, if set, runs after every successful write, before the
	// operation returns.
	written func(ctx context.Context)
	// closeStore, if set, is what Close does; else the store's owner
	// closes it.
	closeStore func() error
	now        func() time.Time
	// keyRotated, if set, runs after a master key rotation committed, with
	// the new key (serve: make it the server's).
	keyRotated func(*seal.Sealer) error
	// sealing is held (read) by every write that seals under the master
	// key, and (write) by a master key rotation, so nothing is sealed under
	// the old key after the store was re-sealed under the new one.
	sealing sync.RWMutex
	// actor names who makes the changes in the audit trail:
	// tenants.ActorCLI or tenants.ActorAdminAPI.
	actor string
	// audit records the audit events of changes; nil means straight into
	// the store (the CLI), without a stream.
	audit *audit.Recorder
	// invites sends invitations (invite.go); nil: mail not configured.
	invites *inviter
}

var _ admin = (*localAdmin)(nil)

// Close closes the store if this localAdmin opened it.
func (a *localAdmin) Close() error {
	if a.closeStore == nil {
		return nil
	}
	return a.closeStore()
}

func (a *localAdmin) wrote(ctx context.Context) {
	if a.written != nil {
		a.written(ctx)
	}
}

// record writes the audit event of a change that has committed, made by
// a.actor. A change is not undone when its event cannot be written: the
// command fails saying so, and the operator knows the trail lacks it.
func (a *localAdmin) record(ctx context.Context, e tenants.AuditEvent) error {
	e.Actor, e.Outcome = a.actor, tenants.OutcomeSuccess
	rec := a.audit
	if rec == nil {
		al, err := a.auditLog()
		if err != nil {
			return err
		}
		rec = &audit.Recorder{Store: al}
	}
	if err := rec.Record(ctx, e); err != nil {
		return fmt.Errorf("the change was made, but its audit event was not recorded: %w", err)
	}
	return nil
}

// auditLog is the store's audit trail.
func (a *localAdmin) auditLog() (tenants.AuditLog, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	al, ok := st.(tenants.AuditLog)
	if !ok {
		return nil, fmt.Errorf("the %T store keeps no audit trail", st)
	}
	return al, nil
}

func (a *localAdmin) auditEvents(ctx context.Context, q tenants.AuditQuery) ([]tenants.AuditEvent, error) {
	if q.Tenant == "" {
		return nil, refuse(http.StatusBadRequest, "--tenant is required")
	}
	if q.Event != "" && !slices.Contains(tenants.AuditEvents, q.Event) {
		return nil, refuse(http.StatusBadRequest, "--event %q: no such audit event; events are %s", q.Event, strings.Join(tenants.AuditEvents, ", "))
	}
	al, err := a.auditLog()
	if err != nil {
		return nil, err
	}
	evs, err := al.AuditEvents(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	if evs == nil {
		evs = []tenants.AuditEvent{}
	}
	return evs, nil
}

func (a *localAdmin) verifyAudit(ctx context.Context, tenantID string) (tenants.AuditVerdict, error) {
	if tenantID == "" {
		return tenants.AuditVerdict{}, refuse(http.StatusBadRequest, "--tenant is required")
	}
	al, err := a.auditLog()
	if err != nil {
		return tenants.AuditVerdict{}, err
	}
	v, err := al.VerifyAudit(ctx, tenantID)
	if err != nil {
		return tenants.AuditVerdict{}, fmt.Errorf("verify audit events: %w", err)
	}
	return v, nil
}

func (a *localAdmin) applyTenants(ctx context.Context, file []byte, allowLoopback bool) (applyReport, error) {
	types := methodTypes()
	ts, err := tenants.ParseFile(file, types)
	if err != nil {
		return applyReport{}, &requestError{status: http.StatusBadRequest, err: err}
	}
	if err := tenants.Validate(ts, tenants.ValidateOptions{AllowLoopbackHTTPIDP: allowLoopback, Methods: types}); err != nil {
		return applyReport{}, &requestError{status: http.StatusUnprocessableEntity, err: fmt.Errorf("nothing applied: %w", err)}
	}
	a.sealing.RLock()
	defer a.sealing.RUnlock()
	sealer, err := a.sealer()
	if err != nil {
		return applyReport{}, err
	}
	st, err := a.store()
	if err != nil {
		return applyReport{}, err
	}
	before := map[string]*tenants.Tenant{}
	for _, t := range ts {
		old, err := st.Tenant(ctx, t.ID)
		switch {
		case errors.Is(err, tenants.ErrNotFound):
		case err != nil:
			return applyReport{}, fmt.Errorf("read tenant %q: %w", t.ID, err)
		default:
			before[t.ID] = &old
		}
	}
	results, err := st.ApplyTenants(ctx, ts, tenants.ApplyOptions{
		NewKey: func(id string) (tenants.SigningKey, error) {
			return session.NewSigningKey(sealer, id, a.now())
		},
		SealMethod:  signin.SealMethods(sealer, types),
		CheckChange: signin.CheckChanges(types),
		NewSAMLKey: func(id string) (tenants.SAMLKey, error) {
			return saml.NewSPKey(sealer, id, a.now())
		},
	})
	if err != nil {
		return applyReport{}, fmt.Errorf("nothing applied: %w", err)
	}
	a.wrote(ctx)
	report := applyReport{Tenants: []applyResult{}, Warnings: []string{}}
	for _, r := range results {
		report.Tenants = append(report.Tenants, applyResult{ID: r.ID, Created: r.Created})
		for _, w := range r.Warnings {
			report.Warnings = append(report.Warnings, fmt.Sprintf("tenant %q %s", r.ID, w))
		}
		after, err := st.Tenant(ctx, r.ID)
		if err != nil {
			return report, fmt.Errorf("the tenants were applied, but tenant %q could not be read back for its audit event: %w", r.ID, err)
		}
		if err := a.record(ctx, tenants.AuditEvent{Tenant: r.ID, Event: tenants.AuditTenantApplied, Subject: r.ID,
			Changes: tenants.AuditChanges(before[r.ID], &after)}); err != nil {
			return report, err
		}
	}
	for _, t := range ts {
		for _, w := range configWarnings(t, types) {
			report.Warnings = append(report.Warnings, fmt.Sprintf("tenant %q %s", w.tenant, w.msg))
		}
		why := notOffered(types, &t)
		for i := range t.Methods {
			if why[i] != "" {
				report.Warnings = append(report.Warnings, fmt.Sprintf("tenant %q methods[%d] %s", t.ID, i, why[i]))
			}
		}
	}
	return report, nil
}

func (a *localAdmin) listTenants(ctx context.Context) ([]tenantRow, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	ts, err := st.Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	rows := []tenantRow{}
	for _, t := range ts {
		rows = append(rows, tenantRow{t.ID, t.Name, string(statusOf(&t)), nonNil(t.Domains), methodTypesOf(&t)})
	}
	return rows, nil
}

func (a *localAdmin) tenant(ctx context.Context, id string) (tenants.Tenant, error) {
	st, err := a.store()
	if err != nil {
		return tenants.Tenant{}, err
	}
	t, err := st.Tenant(ctx, id)
	if errors.Is(err, tenants.ErrNotFound) {
		return tenants.Tenant{}, refuse(http.StatusNotFound, "tenant %q not found", id)
	}
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", err)
	}
	return t, nil
}

func (a *localAdmin) getTenant(ctx context.Context, id, format string) ([]byte, error) {
	if format != "yaml" && format != "json" {
		return nil, refuse(http.StatusBadRequest, "-o %q: supported output formats are yaml and json", format)
	}
	t, err := a.tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return tenants.MarshalFile([]tenants.Tenant{t}, format)
}

func (a *localAdmin) deleteTenant(ctx context.Context, id string) error {
	st, err := a.store()
	if err != nil {
		return err
	}
	err = st.DeleteTenant(ctx, id)
	if errors.Is(err, tenants.ErrNotFound) {
		return refuse(http.StatusNotFound, "tenant %q not found", id)
	}
	if err != nil {
		return fmt.Errorf("delete tenant: %w", err)
	}
	a.wrote(ctx)
	return a.record(ctx, tenants.AuditEvent{Tenant: id, Event: tenants.AuditTenantDeleted, Subject: id})
}

func (a *localAdmin) addUser(ctx context.Context, req addUserRequest) (addUserResult, error) {
	addr, err := parseEmail(req.Email)
	if err != nil {
		return addUserResult{}, err
	}
	if req.TenantID == "" {
		return addUserResult{}, refuse(http.StatusBadRequest, "--tenant is required")
	}
	t, err := a.tenant(ctx, req.TenantID)
	if err != nil {
		return addUserResult{}, err
	}
	roles, err := checkRoles(&t, req.Roles)
	if err != nil {
		return addUserResult{}, err
	}
	st, err := a.store()
	if err != nil {
		return addUserResult{}, err
	}
	var hash string
	// The roles before, for the audit event (user_added or roles_changed).
	var prevRoles []string
	wasMember := false
	existing, err := st.UserByEmail(ctx, addr)
	if err == nil {
		prevRoles, err = st.Membership(ctx, t.InternalID, existing.ID)
		wasMember = err == nil
		if errors.Is(err, tenants.ErrNotFound) {
			err = nil
		}
		if err != nil {
			return addUserResult{}, fmt.Errorf("look up membership: %w", err)
		}
	}
	if errors.Is(err, tenants.ErrNotFound) {
		if req.PasswordInput == nil {
			return addUserResult{}, refuse(http.StatusUnprocessableEntity, "%s is a new user: give a password with --password-stdin", addr)
		}
		input, err := req.PasswordInput()
		if err != nil {
			return addUserResult{}, err
		}
		pw, err := passwordFromInput(input)
		if err != nil {
			return addUserResult{}, err
		}
		if err := password.CheckPolicy(pw); err != nil {
			return addUserResult{}, &requestError{status: http.StatusUnprocessableEntity, err: err}
		}
		if hash, err = a.passwords.Hash(pw); errors.Is(err, password.ErrBusy) {
			return addUserResult{}, &requestError{status: http.StatusServiceUnavailable, err: fmt.Errorf("hash password: %w", err)}
		} else if err != nil {
			return addUserResult{}, fmt.Errorf("hash password: %w", err)
		}
	} else if err != nil {
		return addUserResult{}, fmt.Errorf("look up user: %w", err)
	}
	created, err := st.AddMember(ctx, t.ID, tenants.NewMember{Email: addr, Roles: roles, PasswordHash: hash})
	if err != nil {
		return addUserResult{}, fmt.Errorf("add user: %w", err)
	}
	a.wrote(ctx)
	result := addUserResult{Created: created, Email: addr, Tenant: t.ID, Roles: nonNil(roles)}
	event := tenants.AuditUserAdded
	if wasMember {
		event = tenants.AuditRolesChanged
		if slices.Equal(slices.Sorted(slices.Values(prevRoles)), slices.Sorted(slices.Values(roles))) {
			return result, nil // nothing changed
		}
	}
	subject := existing.ID
	if u, err := st.UserByEmail(ctx, addr); err == nil {
		subject = u.ID
	}
	return result, a.record(ctx, tenants.AuditEvent{Tenant: t.ID, Event: event, Subject: subject, Email: addr, Roles: nonNil(roles)})
}

func (a *localAdmin) listUsers(ctx context.Context, tenantID string) ([]userRow, error) {
	if tenantID == "" {
		return nil, refuse(http.StatusBadRequest, "--tenant is required")
	}
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	members, err := st.Members(ctx, tenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil, refuse(http.StatusNotFound, "tenant %q not found", tenantID)
	}
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	rows := []userRow{}
	for _, m := range members {
		rows = append(rows, userRow{m.User.ID, m.User.Email, nonNil(m.Roles), m.User.PasswordHash != ""})
	}
	return rows, nil
}

func (a *localAdmin) deleteUser(ctx context.Context, tenantID, email string) error {
	addr, err := parseEmail(email)
	if err != nil {
		return err
	}
	if tenantID == "" {
		return refuse(http.StatusBadRequest, "--tenant is required")
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	now := a.now()
	// Every session issued until now expires by now + MaxTTL at the latest.
	err = st.RemoveMember(ctx, tenantID, addr, tenants.Revocation{
		NotBefore: now,
		Expires:   session.RevocationExpires(now.Add(session.MaxTTL)),
	})
	if errors.Is(err, tenants.ErrNotFound) {
		return refuse(http.StatusNotFound, "%s is not a member of tenant %q", addr, tenantID)
	}
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	a.wrote(ctx)
	return a.record(ctx, tenants.AuditEvent{Tenant: tenantID, Event: tenants.AuditUserRemoved, Email: addr})
}

// removePasskeys removes every passkey of a member in one tenant, the
// other second factor (reset-mfa). A passkey removed meanwhile is no
// error; one that fails to go is, and a rerun removes the rest.
func removePasskeys(ctx context.Context, st tenants.Store, tenantInternalID, userID string) error {
	ps, err := st.Passkeys(ctx, tenantInternalID, userID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := st.RemovePasskey(ctx, tenantInternalID, userID, p.ID); err != nil && !errors.Is(err, tenants.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (a *localAdmin) resetMFA(ctx context.Context, tenantID, email string) error {
	addr, err := parseEmail(email)
	if err != nil {
		return err
	}
	if tenantID == "" {
		return refuse(http.StatusBadRequest, "--tenant is required")
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	t, err := st.Tenant(ctx, tenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return refuse(http.StatusNotFound, "tenant %q not found", tenantID)
	}
	if err != nil {
		return fmt.Errorf("reset mfa: %w", err)
	}
	u, err := st.UserByEmail(ctx, addr)
	if err == nil {
		err = st.UpdateSecondFactors(ctx, t.InternalID, u.ID, func(f *tenants.SecondFactors) error {
			*f = tenants.SecondFactors{}
			return nil
		})
	}
	if errors.Is(err, tenants.ErrNotFound) {
		return refuse(http.StatusNotFound, "%s is not a member of tenant %q", addr, tenantID)
	}
	if err == nil {
		err = removePasskeys(ctx, st, t.InternalID, u.ID)
	}
	if err != nil {
		return fmt.Errorf("reset mfa: %w", err)
	}
	a.wrote(ctx)
	return a.record(ctx, tenants.AuditEvent{Tenant: tenantID, Event: tenants.AuditMFAReset, Subject: u.ID, Email: addr})
}
