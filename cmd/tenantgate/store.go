package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
)

// storeFlags are the flags every CLI command that reads or writes tenants
// shares (CONTRACT.md: --db, or --server with --admin-token-file).
type storeFlags struct {
	db, masterKeyFile, server, adminTokenFile string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.db, "db", "./tenantgate.db", "the bbolt database file (opened directly; tenantgate serve must not be running on it)")
	fl.StringVar(&f.masterKeyFile, "master-key-file", "./tenantgate.key", "key that encrypts signing keys and secrets at rest; created (0600) if missing")
	fl.StringVar(&f.server, "server", "", "URL of a running server's --admin-addr (https://, or http:// to a loopback address); instead of --db")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin API's bearer token (with --server)")
}

// serverMode reports whether the command goes through a running server
// (--server) rather than the database (--db). --db and --server are
// mutually exclusive wherever they are set (command line, environment,
// config file), and --server needs --admin-token-file.
func (f *storeFlags) serverMode(cmd *cobra.Command) (bool, error) {
	set := func(name string) bool {
		fl := cmd.Flags().Lookup(name)
		return fl != nil && fl.Changed
	}
	switch {
	case !set("server"):
		if set("admin-token-file") {
			return false, errors.New("--admin-token-file goes with --server URL (also check TENANTGATE_ADMIN_TOKEN_FILE and --config); with --db the database is opened directly")
		}
		return false, nil
	case set("db"):
		return false, errors.New("--db and --server are mutually exclusive: give --db PATH to open the database, or --server URL with --admin-token-file PATH to go through a running server (also check TENANTGATE_DB, TENANTGATE_SERVER and --config)")
	case f.adminTokenFile == "":
		return false, errors.New("--server needs --admin-token-file PATH, the file holding the server's admin token")
	}
	return true, nil
}

// open returns what the command works on: a running server's admin API
// with --server, else the database, opened on first use (so a command
// checks its input first) and closed by Close.
func (f *storeFlags) open(cmd *cobra.Command) (admin, error) {
	remote, err := f.serverMode(cmd)
	if err != nil {
		return nil, err
	}
	if remote {
		return newRemoteAdmin(f.server, f.adminTokenFile)
	}
	var st tenants.Store
	return &localAdmin{
		store: func() (tenants.Store, error) {
			if st != nil {
				return st, nil
			}
			s, err := boltstore.Open(f.db, boltstore.Options{Timeout: time.Second})
			if err != nil {
				return nil, fmt.Errorf("open database: %w", err)
			}
			st = s
			return st, nil
		},
		closeStore: func() error {
			if st == nil {
				return nil
			}
			return st.Close()
		},
		sealer: func() (*seal.Sealer, error) {
			s, err := seal.LoadOrCreateMasterKey(f.masterKeyFile)
			if err != nil {
				return nil, fmt.Errorf("master key: %w", err)
			}
			return s, nil
		},
		passwords: &password.Hasher{},
		now:       time.Now,
	}, nil
}
