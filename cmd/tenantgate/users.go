package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/tenants"
)

func newUsersCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage built-in (password) users and their tenant memberships",
	}
	sf.register(cmd)
	cmd.AddCommand(newUsersAddCmd(&sf), newUsersListCmd(&sf), newUsersDeleteCmd(&sf), newUsersInviteCmd(&sf), newUsersResetMFACmd(&sf))
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
For an existing user the password is never changed and any --password-stdin input is ignored.
With --server the password is read here and sent to the server, which hashes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := parseEmail(email); err != nil {
				return err
			}
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			req := addUserRequest{TenantID: tenantID, Email: email, Roles: roles}
			if passwordStdin {
				req.PasswordInput = func() ([]byte, error) { return readPasswordInput(cmd.InOrStdin()) }
			}
			res, err := a.addUser(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
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
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			rows, err := a.listUsers(cmd.Context(), tenantID)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			return printUserTable(cmd.OutOrStdout(), rows)
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
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.deleteUser(cmd.Context(), tenantID, email); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from tenant %s; their sessions there are revoked\n", addr, tenantID)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantID, "tenant", "", "tenant id")
	cmd.Flags().StringVar(&email, "email", "", "the user's email address")
	return cmd
}

func newUsersResetMFACmd(sf *storeFlags) *cobra.Command {
	var tenantID, email string
	cmd := &cobra.Command{
		Use:   "reset-mfa --tenant ID --email EMAIL",
		Short: "Remove a member's second factors (authenticator app, recovery codes) in a tenant",
		Long: `Remove a member's second factors in one tenant, for a person who lost
their authenticator app and recovery codes. Under mfa: required their next
sign-in there enrols a new app right after the password; under optional
they sign in with the password alone until they enrol again. Their other
tenants and their sessions are untouched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := parseEmail(email)
			if err != nil {
				return err
			}
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.resetMFA(cmd.Context(), tenantID, email); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed the second factors of %s in tenant %s\n", addr, tenantID)
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
		return "", refuse(http.StatusBadRequest, "--email is required")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.ContainsAny(s, " <>\"") {
		return "", refuse(http.StatusBadRequest, "--email must be a plain address like name@example.com")
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
		return nil, refuse(http.StatusUnprocessableEntity, "tenant %s has no role %s (defined: %s)", t.ID, strings.Join(unknown, ", "), dash(strings.Join(defined, ", ")))
	}
	out := slices.Clone(roles)
	sort.Strings(out)
	return slices.Compact(out), nil
}

// maxPasswordInput bounds the password input read, in bytes.
const maxPasswordInput = 4096

// readPasswordInput reads what --password-stdin gives: everything up to EOF,
// but no more than one byte past maxPasswordInput.
func readPasswordInput(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxPasswordInput+1))
	if err != nil {
		return nil, fmt.Errorf("read password from standard input: %w", err)
	}
	return data, nil
}

// passwordFromInput turns what --password-stdin read into the password: at
// most maxPasswordInput bytes, one trailing newline (LF or CRLF) removed,
// not empty. The admin API applies it to the password a client sent, so
// both modes of `users add` treat the input alike.
func passwordFromInput(data []byte) (string, error) {
	if len(data) > maxPasswordInput {
		return "", refuse(http.StatusUnprocessableEntity, "password on standard input is longer than %d bytes", maxPasswordInput)
	}
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", refuse(http.StatusUnprocessableEntity, "--password-stdin: no password on standard input")
	}
	return s, nil
}
