package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/extauthz/saml"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
)

// maxTenantFile bounds how much of a tenant file is read.
const maxTenantFile = 4 << 20

func newTenantsCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "tenants",
		Short: "Create, list, show and delete tenants",
	}
	sf.register(cmd)
	cmd.AddCommand(newTenantsApplyCmd(&sf), newTenantsListCmd(&sf), newTenantsGetCmd(&sf), newTenantsDeleteCmd(&sf))
	return cmd
}

func newTenantsApplyCmd(sf *storeFlags) *cobra.Command {
	var file string
	var allowLoopback bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update every tenant in FILE (YAML or JSON); all or nothing",
		Long: `Create or update every tenant in FILE (YAML or JSON; "-" reads standard input).
If any tenant in the file is invalid, or a domain is already held by another tenant,
nothing is written and every problem is reported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("apply needs -f FILE (a tenant file, or - for standard input)")
			}
			data, err := readInput(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			ts, err := tenants.ParseFile(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if err := tenants.Validate(ts, tenants.ValidateOptions{AllowLoopbackHTTPIDP: allowLoopback}); err != nil {
				return fmt.Errorf("%s: nothing applied: %w", file, err)
			}
			sealer, err := sf.sealer()
			if err != nil {
				return err
			}
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			results, err := st.ApplyTenants(cmd.Context(), ts, tenants.ApplyOptions{
				NewKey: func(id string) (tenants.SigningKey, error) {
					return session.NewSigningKey(sealer, id, time.Now())
				},
				Seal: func(plaintext []byte, id string) ([]byte, error) {
					return session.SealSecret(sealer, plaintext, id)
				},
				NewSAMLKey: func(id string) (tenants.SAMLKey, error) {
					return saml.NewSPKey(sealer, id, time.Now())
				},
			})
			if err != nil {
				return fmt.Errorf("%s: nothing applied: %w", file, err)
			}
			for _, r := range results {
				verb := "configured"
				if r.Created {
					verb = "created"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tenant %s %s\n", r.ID, verb)
			}
			for _, t := range ts {
				for i, m := range t.Methods {
					if m.Incomplete() {
						fmt.Fprintf(cmd.ErrOrStderr(), "tenantgate: warning: tenant %q methods[%d] (%s %s) has no clientID: it is not offered at sign-in until clientID and clientSecret are applied\n",
							t.ID, i, m.Type, m.Provider)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "tenant file (YAML or JSON), or - for standard input")
	cmd.Flags().BoolVar(&allowLoopback, "allow-loopback-http-idp", false, "accept http:// IdP URLs that point at loopback addresses (tests and local development only)")
	return cmd
}

func readInput(stdin io.Reader, file string) ([]byte, error) {
	var r io.Reader
	if file == "-" {
		r = stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read tenant file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxTenantFile+1))
	if err != nil {
		return nil, fmt.Errorf("read tenant file: %w", err)
	}
	if len(data) > maxTenantFile {
		return nil, fmt.Errorf("tenant file %s is larger than %d MiB", file, maxTenantFile>>20)
	}
	return data, nil
}

func newTenantsListCmd(sf *storeFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list [-o json]",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o %q: supported output formats are json (or none for a table)", output)
			}
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := st.Tenants(cmd.Context())
			if err != nil {
				return fmt.Errorf("list tenants: %w", err)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				type row struct {
					ID      string   `json:"id"`
					Name    string   `json:"name"`
					Status  string   `json:"status"`
					Domains []string `json:"domains"`
					Methods []string `json:"methods"`
				}
				rows := []row{}
				for _, t := range ts {
					rows = append(rows, row{t.ID, t.Name, string(statusOf(&t)), nonNil(t.Domains), methodTypes(&t)})
				}
				return writeJSON(out, rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tDOMAINS\tMETHODS")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, statusOf(&t), dash(strings.Join(t.Domains, ",")), strings.Join(methodTypes(&t), ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

func newTenantsGetCmd(sf *storeFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get ID [-o json|yaml]",
		Short: "Show one tenant in the tenant-file format (secrets are never shown)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				output = "yaml"
			}
			if output != "yaml" && output != "json" {
				return fmt.Errorf("-o %q: supported output formats are yaml and json", output)
			}
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			t, err := st.Tenant(cmd.Context(), args[0])
			if errors.Is(err, tenants.ErrNotFound) {
				return fmt.Errorf("tenant %q not found", args[0])
			}
			if err != nil {
				return fmt.Errorf("get tenant: %w", err)
			}
			data, err := tenants.MarshalFile([]tenants.Tenant{t}, output)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

func newTenantsDeleteCmd(sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a tenant, its memberships and its keys; its sessions stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := sf.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			err = st.DeleteTenant(cmd.Context(), args[0])
			if errors.Is(err, tenants.ErrNotFound) {
				return fmt.Errorf("tenant %q not found", args[0])
			}
			if err != nil {
				return fmt.Errorf("delete tenant: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s deleted\n", args[0])
			return nil
		},
	}
}

func statusOf(t *tenants.Tenant) tenants.Status {
	if t.Status == "" {
		return tenants.StatusActive
	}
	return t.Status
}

func methodTypes(t *tenants.Tenant) []string {
	out := []string{}
	for _, m := range t.Methods {
		out = append(out, m.Type)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
