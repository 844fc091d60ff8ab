// Command tenantgate is an Envoy external-authorization server that gives a
// SaaS application multi-tenant sign-in. See README.md for the quick start and
// the configuration reference, and `tenantgate --help` for the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code. Errors are
// printed as a single line on stderr.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "tenantgate: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// oneLine is an error's message on one line, as the CLI prints it and the
// admin API returns it: the lines of a joined error separated by "; ".
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tenantgate",
		Short: "Multi-tenant sign-in for any app behind Envoy (an ext_authz server)",
		Long: `tenantgate is an Envoy external-authorization (ext_authz) gRPC server. It resolves the
tenant of every request from its host (custom domain, <id>.<base-domain>, or /org/<id>/ on
the apex host), sends people who are not signed in to their tenant's sign-in page, and lets
requests through with trusted x-tenant-id / x-user-* headers.

Every flag can also be set as TENANTGATE_<FLAG> (upper case, '-' → '_') or in the file
given with --config (YAML: flag names as keys). Precedence: flag, environment, file, default.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("config", "", "YAML file of flag values (keys are flag names)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return applyEnvAndConfig(cmd)
	}
	root.AddCommand(
		newServeCmd(),
		newTenantsCmd(),
		newUsersCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newKeysCmd(),
		newMasterKeyCmd(),
		newAuditCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "tenantgate %s\n", version)
			return nil
		},
	}
}
