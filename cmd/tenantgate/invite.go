package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tenantgate/tenantgate/extauthz/account"
	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/mail"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// mailFlags are --smtp-url, --smtp-password-file and --mail-from
// (CONTRACT.md), on serve and on `users invite`.
type mailFlags struct {
	url, passwordFile, from string
}

func (f *mailFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.url, "smtp-url", "", "mail for password reset, invitations and notices: smtp://[user@]host[:port] (STARTTLS required), smtps:// (implicit TLS), smtp+insecure:// (local development only)")
	fl.StringVar(&f.passwordFile, "smtp-password-file", "", "file holding the SMTP password (AUTH PLAIN as the user of --smtp-url)")
	fl.StringVar(&f.from, "mail-from", "", "the From address of tenantgate's mail")
}

// sender returns the configured Sender, or nil without --smtp-url.
func (f *mailFlags) sender() (*mail.Sender, error) {
	pw := ""
	if f.passwordFile != "" {
		var err error
		if pw, err = readSecretFile(f.passwordFile); err != nil {
			return nil, fmt.Errorf("--smtp-password-file: %w", err)
		}
	}
	return mail.NewSender(f.url, pw, f.from)
}

// inviter sends invitations: the sealed link, on the tenant's host, by
// mail.
type inviter struct {
	sealer      func() (*seal.Sealer, error)
	sender      *mail.Sender
	scheme      string
	baseDomains []string
}

type inviteRequest struct {
	TenantID string        `json:"-"`
	Email    string        `json:"email"`
	Roles    []string      `json:"roles"`
	TTL      time.Duration `json:"ttl,omitempty"`
	Revoke   bool          `json:"revoke,omitempty"`
}

type inviteResult struct {
	Tenant  string    `json:"tenant"`
	Email   string    `json:"email"`
	Sent    bool      `json:"sent,omitempty"`
	Revoked bool      `json:"revoked,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

func (r inviteResult) String() string {
	if r.Revoked {
		return fmt.Sprintf("withdrew every invitation of %s to tenant %s", r.Email, r.Tenant)
	}
	return fmt.Sprintf("invited %s to tenant %s; the link works once, until %s", r.Email, r.Tenant, r.Expires.Format(time.RFC3339))
}

// inviteUser sends (or, with Revoke, withdraws) invitations. The
// membership is created only when the invitation is accepted.
func (a *localAdmin) inviteUser(ctx context.Context, req inviteRequest) (inviteResult, error) {
	email, err := parseEmail(req.Email)
	if err != nil {
		return inviteResult{}, err
	}
	if req.TTL == 0 {
		req.TTL = account.DefaultInviteTTL
	}
	if req.TTL < time.Minute || req.TTL > account.MaxInviteTTL {
		return inviteResult{}, refuse(http.StatusBadRequest, "--invite-ttl must be between 1m and %s", account.MaxInviteTTL)
	}
	st, err := a.store()
	if err != nil {
		return inviteResult{}, err
	}
	t, err := st.Tenant(ctx, req.TenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return inviteResult{}, refuse(http.StatusNotFound, "tenant %q does not exist", req.TenantID)
	}
	if err != nil {
		return inviteResult{}, err
	}
	res := inviteResult{Tenant: t.ID, Email: email}
	if req.Revoke {
		now := a.now()
		err := st.Revoke(ctx, tenants.Revocation{Key: account.InviteRevocationKey(t.InternalID, email), NotBefore: now, Expires: now.Add(account.MaxInviteTTL + session.MaxLeeway)})
		if err != nil {
			return inviteResult{}, err
		}
		if a.written != nil {
			a.written(ctx)
		}
		res.Revoked = true
		return res, nil
	}
	for _, r := range req.Roles {
		if _, ok := t.Roles[r]; !ok {
			return inviteResult{}, refuse(http.StatusBadRequest, "role %q is not defined in tenant %q", r, t.ID)
		}
	}
	if !t.HasMethod(tenants.MethodPassword) {
		return inviteResult{}, refuse(http.StatusBadRequest, "tenant %q has no password method: invitations set a password", t.ID)
	}
	in := a.invites
	if in == nil || in.sender == nil {
		return inviteResult{}, refuse(http.StatusServiceUnavailable, "mail is not configured: give --smtp-url and --mail-from")
	}
	host := ""
	switch {
	case len(t.Domains) > 0:
		host = t.Domains[0]
	case len(in.baseDomains) > 0:
		host = t.ID + "." + in.baseDomains[0]
	default:
		return inviteResult{}, refuse(http.StatusBadRequest, "tenant %q has no domain: give --base-domain so the link can name its host", t.ID)
	}
	sealer, err := in.sealer()
	if err != nil {
		return inviteResult{}, err
	}
	links, err := account.NewLinks(sealer)
	if err != nil {
		return inviteResult{}, err
	}
	token, k, err := links.Issue(account.Link{Kind: account.KindInvite, Email: email, Roles: slices.Clone(req.Roles)}, t.InternalID, req.TTL)
	if err != nil {
		return inviteResult{}, err
	}
	link := url.URL{Scheme: in.scheme, Host: host, Path: login.PathInvite, RawQuery: url.Values{"t": {token}}.Encode()}
	msg, err := account.InviteMessage(account.BrandOf(&t), email, link.String(), int((req.TTL+time.Hour*23)/(24*time.Hour)))
	if err != nil {
		return inviteResult{}, err
	}
	if err := in.sender.Send(ctx, msg); err != nil {
		return inviteResult{}, refuse(http.StatusBadGateway, "we could not send the email, try again later (%v)", err)
	}
	res.Sent, res.Expires = true, k.Expires
	return res, nil
}

func (c *remoteAdmin) inviteUser(ctx context.Context, req inviteRequest) (inviteResult, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return inviteResult{}, fmt.Errorf("admin API request: %w", err)
	}
	p, err := tenantPath(req.TenantID)
	if err != nil {
		return inviteResult{}, err
	}
	data, err := c.do(ctx, http.MethodPost, p+"/invitations", nil, b, "application/json")
	if err != nil {
		return inviteResult{}, err
	}
	var r inviteResult
	return r, decodeAnswer(data, &r)
}

// invite: POST /admin/v1/tenants/{id}/invitations with {"email", "roles",
// "ttl" (nanoseconds), "revoke"}; 200 with the result.
func (a *adminAPI) invite(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r, maxAdminJSON, "request body")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req inviteRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		a.fail(w, r, refuse(http.StatusBadRequest, `request body: want one JSON object {"email": …, "roles": […], "ttl": nanoseconds, "revoke": bool}`))
		return
	}
	req.TenantID = r.PathValue("id")
	res, err := a.ops.inviteUser(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "invitation", "tenant", res.Tenant, "revoked", res.Revoked, "remote", r.RemoteAddr)
	writeAdminJSON(w, http.StatusOK, res)
}

func newUsersInviteCmd(sf *storeFlags) *cobra.Command {
	var req inviteRequest
	var mf mailFlags
	var baseDomains []string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "invite --tenant ID --email EMAIL [--role ROLE]... [--invite-ttl D] [--revoke]",
		Short: "Email a single-use invitation link (or, with --revoke, withdraw every invitation to the address)",
		Long: `Email a link that lets the person join the tenant with the given roles: a new address
chooses a password, an existing account accepts with its own password. The membership exists
only once the link is used. The link works once, until --invite-ttl (default 7 days, at most
30). --revoke withdraws every invitation sent to the address in the tenant so far.
With --server the running server sends the mail; with --db or --etcd-* this command does,
with the mail flags (and --base-domain, for a tenant without a domain of its own).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.TenantID == "" {
				return errors.New("--tenant is required")
			}
			if _, err := parseEmail(req.Email); err != nil {
				return err
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if la, ok := a.(*localAdmin); ok {
				sender, err := mf.sender()
				if err != nil {
					return err
				}
				scheme := "https"
				if insecure {
					scheme = "http"
				}
				la.invites = &inviter{sealer: la.sealer, sender: sender, scheme: scheme, baseDomains: baseDomains}
			}
			res, err := a.inviteUser(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.TenantID, "tenant", "", "tenant id")
	fl.StringVar(&req.Email, "email", "", "the address to invite")
	fl.StringArrayVar(&req.Roles, "role", nil, "role in the tenant once accepted (repeatable)")
	fl.DurationVar(&req.TTL, "invite-ttl", account.DefaultInviteTTL, "how long the link works (at most 720h)")
	fl.BoolVar(&req.Revoke, "revoke", false, "withdraw every invitation sent to the address in the tenant")
	mf.register(fl)
	fl.StringArrayVar(&baseDomains, "base-domain", nil, "with --db/--etcd: the link's host is <id>.D for a tenant without a domain")
	fl.BoolVar(&insecure, "insecure-cookies", false, "with --db/--etcd: http:// links (plain-http development, as serve --insecure-cookies)")
	return cmd
}
