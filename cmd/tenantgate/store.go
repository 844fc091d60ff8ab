package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/extauthz/session"
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
	fl.StringVar(&f.server, "server", "", "URL of a running server's admin API (not available in this version; use --db)")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "bearer token file for --server")
}

// openStore opens the database for a CLI command.
func (f *storeFlags) openStore() (tenants.Store, error) {
	if f.server != "" {
		return nil, errors.New("--server: the admin API client is not part of this version yet; stop the server and use --db PATH")
	}
	st, err := boltstore.Open(f.db, boltstore.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// sealer loads the master key, creating it if missing.
func (f *storeFlags) sealer() (*session.Sealer, error) {
	s, err := session.LoadOrCreateMasterKey(f.masterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return s, nil
}
