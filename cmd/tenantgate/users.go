package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

func newUsersCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage built-in (password) users and their tenant memberships",
	}
	sf.register(cmd)
	cmd.AddCommand(newUsersAddCmd(&sf), newUsersListCmd(&sf), newUsersDeleteCmd(&sf))
	return cmd
}

func newUsersAddCmd(sf *storeFlags) *cobra.Command {
	var tenantID, email string
	var roles []string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "add --tenant ID --email EMAIL [--role ROLE]... [--password-stdin]",
		Short: "Add a user to a tenant, creating the user if the email is new",
		Long: `Add a membership in the tenant with the given roles (replacing the roles of an existing
membership). If no user has the email yet, the user is created with the password read from
standard input (--password-stdin; at least 12 characters; one trailing newline is removed).
For an existing user the password is never changed and any --password-stdin input is ignored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := parseEmail(email)
			if err != nil {
				return err
			}
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			t, err := st.Tenant(ctx, tenantID)
			if errors.Is(err, tenants.ErrNotFound) {
				return fmt.Errorf("tenant %q not found", tenantID)
			}
			if err != nil {
				return fmt.Errorf("get tenant: %w", err)
			}
			roles, err = checkRoles(&t, roles)
			if err != nil {
				return err
			}

			var hash string
			if _, err := st.UserByEmail(ctx, addr); errors.Is(err, tenants.ErrNotFound) {
				if !passwordStdin {
					return fmt.Errorf("%s is a new user: give a password with --password-stdin", addr)
				}
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				if err := password.CheckPolicy(pw); err != nil {
					return err
				}
				if hash, err = (&password.Hasher{}).Hash(pw); err != nil {
					return fmt.Errorf("hash password: %w", err)
				}
			} else if err != nil {
				return fmt.Errorf("look up user: %w", err)
			}

			created, err := st.AddMember(ctx, t.ID, tenants.NewMember{Email: addr, Roles: roles, PasswordHash: hash})
			if err != nil {
				return fmt.Errorf("add user: %w", err)
			}
			what := "added existing user"
			if created {
				what = "created user"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s to tenant %s with roles [%s]\n", what, addr, t.ID, strings.Join(roles, ","))
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantID, "tenant", "", "tenant id")
	cmd.Flags().StringVar(&email, "email", "", "the user's email address")
	cmd.Flags().StringArrayVar(&roles, "role", nil, "role in the tenant (repeatable; must be defined in the tenant)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read a new user's password from standard input")
	return cmd
}

func newUsersListCmd(sf *storeFlags) *cobra.Command {
	var tenantID, output string
	cmd := &cobra.Command{
		Use:   "list --tenant ID [-o json]",
		Short: "List the members of a tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			if output != "" && output != "json" {
				return fmt.Errorf("-o %q: supported output formats are json (or none for a table)", output)
			}
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			members, err := st.Members(cmd.Context(), tenantID)
			if errors.Is(err, tenants.ErrNotFound) {
				return fmt.Errorf("tenant %q not found", tenantID)
			}
			if err != nil {
				return fmt.Errorf("list users: %w", err)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				type row struct {
					ID       string   `json:"id"`
					Email    string   `json:"email"`
					Roles    []string `json:"roles"`
					Password bool     `json:"password"`
				}
				rows := []row{}
				for _, m := range members {
					rows = append(rows, row{m.User.ID, m.User.Email, nonNil(m.Roles), m.User.PasswordHash != ""})
				}
				return writeJSON(out, rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tROLES\tID")
			for _, m := range members {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", m.User.Email, dash(strings.Join(m.Roles, ",")), m.User.ID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&tenantID, "tenant", "", "tenant id")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

func newUsersDeleteCmd(sf *storeFlags) *cobra.Command {
	var tenantID, email string
	cmd := &cobra.Command{
		Use:   "delete --tenant ID --email EMAIL",
		Short: "Remove a user from a tenant and revoke their sessions there",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := parseEmail(email)
			if err != nil {
				return err
			}
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now()
			err = st.RemoveMember(cmd.Context(), tenantID, addr, tenants.Revocation{
				NotBefore: now,
				Expires:   now.Add(session.MaxTTL + time.Minute),
			})
			if errors.Is(err, tenants.ErrNotFound) {
				return fmt.Errorf("%s is not a member of tenant %q", addr, tenantID)
			}
			if err != nil {
				return fmt.Errorf("delete user: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from tenant %s; their sessions there are revoked\n", addr, tenantID)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantID, "tenant", "", "tenant id")
	cmd.Flags().StringVar(&email, "email", "", "the user's email address")
	return cmd
}

// parseEmail accepts one bare addr-spec (no display name, no list) and
// returns it lower-cased in ASCII.
func parseEmail(s string) (string, error) {
	if s == "" {
		return "", errors.New("--email is required")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.ContainsAny(s, " <>\"") {
		return "", errors.New("--email must be a plain address like name@example.com")
	}
	return strings.ToLower(a.Address), nil
}

// checkRoles requires every role to be defined in the tenant and returns the
// roles sorted without duplicates.
func checkRoles(t *tenants.Tenant, roles []string) ([]string, error) {
	var unknown []string
	for _, r := range roles {
		if _, ok := t.Roles[r]; !ok {
			unknown = append(unknown, r)
		}
	}
	if len(unknown) > 0 {
		defined := make([]string, 0, len(t.Roles))
		for name := range t.Roles {
			defined = append(defined, name)
		}
		sort.Strings(defined)
		return nil, fmt.Errorf("tenant %s has no role %s (defined: %s)", t.ID, strings.Join(unknown, ", "), dash(strings.Join(defined, ", ")))
	}
	out := slices.Clone(roles)
	sort.Strings(out)
	return slices.Compact(out), nil
}

// readPassword reads a password from r: everything up to EOF, with one
// trailing newline (LF or CRLF) removed.
func readPassword(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), 4097))
	if err != nil {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if len(data) > 4096 {
		return "", errors.New("password on standard input is longer than 4096 bytes")
	}
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", errors.New("--password-stdin: no password on standard input")
	}
	return s, nil
}
