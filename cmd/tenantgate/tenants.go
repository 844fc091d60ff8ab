package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/tenants"
)

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
nothing is written and every problem is reported. With --server, the server's own
--allow-loopback-http-idp setting applies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("apply needs -f FILE (a tenant file, or - for standard input)")
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if _, remote := a.(*remoteAdmin); remote && allowLoopback {
				return errLoopbackWithServer
			}
			data, err := readInput(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			report, err := a.applyTenants(cmd.Context(), data, allowLoopback)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			report.print(cmd.OutOrStdout(), cmd.ErrOrStderr())
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "tenant file (YAML or JSON), or - for standard input")
	cmd.Flags().BoolVar(&allowLoopback, "allow-loopback-http-idp", false, "accept http:// IdP URLs that point at loopback addresses (tests and local development only; --db only)")
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
	data, err := io.ReadAll(io.LimitReader(r, tenants.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read tenant file: %w", err)
	}
	if len(data) > tenants.MaxFileSize {
		return nil, fmt.Errorf("tenant file %s is larger than %d MiB", file, tenants.MaxFileSize>>20)
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
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			rows, err := a.listTenants(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			return printTenantTable(cmd.OutOrStdout(), rows)
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
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			data, err := a.getTenant(cmd.Context(), args[0], output)
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
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.deleteTenant(cmd.Context(), args[0]); err != nil {
				return err
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

func methodTypesOf(t *tenants.Tenant) []string {
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
