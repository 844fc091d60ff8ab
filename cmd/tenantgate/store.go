package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// storeFlags are the flags every CLI command that reads or writes tenants
// shares (CONTRACT.md: --db, the --etcd-* flags of serve, or --server with
// --admin-token-file).
type storeFlags struct {
	db, masterKeyFile, server, adminTokenFile string
	etcd                                      etcdFlags
}

func (f *storeFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.db, "db", "./tenantgate.db", "the bbolt database file (opened directly; tenantgate serve must not be running on it)")
	f.etcd.register(fl)
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
	case set("etcd-endpoints"):
		return false, errors.New("--etcd-endpoints and --server are mutually exclusive: give --etcd-endpoints (and the other --etcd-* flags) to open the etcd store, or --server URL with --admin-token-file PATH to go through a running server (also check TENANTGATE_ETCD_ENDPOINTS, TENANTGATE_SERVER and --config)")
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
	dbSet := cmd.Flags().Changed("db")
	if err := f.etcd.check(dbSet); err != nil {
		return nil, err
	}
	var st tenants.Store
	open := func() (tenants.Store, error) {
		if st != nil {
			return st, nil
		}
		s, err := openStore(f.db, &f.etcd, nil)
		if err != nil {
			return nil, err
		}
		st = s
		return st, nil
	}
	return &localAdmin{
		store: open,
		closeStore: func() error {
			if st == nil {
				return nil
			}
			return st.Close()
		},
		// The sealer is what writes secrets: it must open what the store
		// holds sealed already (checkMasterKey), or the CLI would seal
		// secrets that the running servers cannot open.
		sealer: func() (*seal.Sealer, error) {
			s, err := seal.LoadOrCreateMasterKey(f.masterKeyFile)
			if err != nil {
				return nil, fmt.Errorf("master key: %w", err)
			}
			st, err := open()
			if err != nil {
				return nil, err
			}
			ctx := cmd.Context()
			all, err := st.Tenants(ctx)
			if err != nil {
				return nil, fmt.Errorf("read tenants: %w", err)
			}
			if err := checkMasterKey(ctx, st, all, s, f.masterKeyFile); err != nil {
				return nil, err
			}
			return s, nil
		},
		passwords: &password.Hasher{},
		now:       time.Now,
		actor:     tenants.ActorCLI,
	}, nil
}

// etcdFlags are the flags that open the etcd store instead of a bbolt file
// (CONTRACT.md): serve and every command that takes --db have them.
type etcdFlags struct {
	endpoints                 []string
	prefix                    string
	caFile, certFile, keyFile string
	username, passwordFile    string
	// progressInterval is how often the store confirms its snapshot
	// (etcdstore.Options.ProgressInterval); serve sets it from
	// --store-max-staleness, zero is the store's default.
	progressInterval time.Duration
}

func (f *etcdFlags) register(fl *pflag.FlagSet) {
	fl.StringSliceVar(&f.endpoints, "etcd-endpoints", nil, "use the etcd store at these endpoints (comma-separated URLs, https:// with TLS) instead of bbolt; not with --db")
	fl.StringVar(&f.prefix, "etcd-prefix", etcdstore.DefaultPrefix, "key prefix of tenantgate's data in etcd")
	fl.StringVar(&f.caFile, "etcd-ca-file", "", "CA certificate (PEM) that etcd's server certificates must chain to; without it, the system's roots")
	fl.StringVar(&f.certFile, "etcd-cert-file", "", "client certificate (PEM) presented to etcd, with --etcd-key-file")
	fl.StringVar(&f.keyFile, "etcd-key-file", "", "private key (PEM) of --etcd-cert-file")
	fl.StringVar(&f.username, "etcd-username", "", "etcd user to authenticate as, with --etcd-password-file")
	fl.StringVar(&f.passwordFile, "etcd-password-file", "", "file holding the password of --etcd-username")
}

// enabled reports whether the etcd store is chosen (--etcd-endpoints).
func (f *etcdFlags) enabled() bool { return len(f.endpoints) > 0 }

// check refuses flags that contradict each other: --db given explicitly
// (dbSet: on the command line, in the environment or in the config file)
// together with --etcd-endpoints, and --etcd-* flags without
// --etcd-endpoints to say which etcd they are for.
func (f *etcdFlags) check(dbSet bool) error {
	if !f.enabled() {
		for _, fl := range []struct{ name, value string }{
			{"--etcd-ca-file", f.caFile}, {"--etcd-cert-file", f.certFile}, {"--etcd-key-file", f.keyFile},
			{"--etcd-username", f.username}, {"--etcd-password-file", f.passwordFile},
		} {
			if fl.value != "" {
				return fmt.Errorf("%s goes with --etcd-endpoints (also check TENANTGATE_ETCD_ENDPOINTS and --config)", fl.name)
			}
		}
		return nil
	}
	if dbSet {
		return errors.New("--db and --etcd-endpoints are mutually exclusive: give --db PATH to use a bbolt file, or --etcd-endpoints URL[,URL…] to use etcd (also check TENANTGATE_DB, TENANTGATE_ETCD_ENDPOINTS and --config)")
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return errors.New("--etcd-cert-file and --etcd-key-file go together")
	}
	if (f.username == "") != (f.passwordFile == "") {
		return errors.New("--etcd-username and --etcd-password-file go together")
	}
	return nil
}

// options builds the etcd store's options from the flags, reading the
// files they name.
func (f *etcdFlags) options(log *slog.Logger) (etcdstore.Options, error) {
	opts := etcdstore.Options{Endpoints: f.endpoints, Prefix: f.prefix, Log: log, ProgressInterval: f.progressInterval}
	var secure, plain bool
	for _, ep := range f.endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return opts, fmt.Errorf("--etcd-endpoints: %q is not an http:// or https:// URL", ep)
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			// The store holds password hashes and every tenant's
			// configuration, and etcd's password travels in the clear.
			return opts, fmt.Errorf("--etcd-endpoints %s: http:// only to a loopback address (127.0.0.1, [::1], localhost); use https:// with --etcd-ca-file", ep)
		}
		secure, plain = secure || u.Scheme == "https", plain || u.Scheme == "http"
	}
	if secure && plain {
		return opts, errors.New("--etcd-endpoints: all https:// or all http://, not both")
	}
	if plain && (f.caFile != "" || f.certFile != "") {
		return opts, errors.New("--etcd-ca-file and --etcd-cert-file are for https:// endpoints; --etcd-endpoints has http:// ones")
	}
	if secure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.caFile != "" {
			pem, err := os.ReadFile(f.caFile)
			if err != nil {
				return opts, fmt.Errorf("--etcd-ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("--etcd-ca-file %s: no PEM certificate in it", f.caFile)
			}
		}
		if f.certFile != "" {
			cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
			if err != nil {
				return opts, fmt.Errorf("--etcd-cert-file and --etcd-key-file: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = cfg
	}
	if f.username != "" {
		pw, err := readSecretFile(f.passwordFile)
		if err != nil {
			return opts, fmt.Errorf("--etcd-password-file: %w", err)
		}
		opts.Username, opts.Password = f.username, pw
	}
	return opts, nil
}

// openStore opens the store the flags choose: etcd with --etcd-endpoints,
// else the bbolt file at db. log receives what the etcd store's follower
// cannot return to a caller (nil: discarded).
func openStore(db string, etcd *etcdFlags, log *slog.Logger) (tenants.Store, error) {
	if !etcd.enabled() {
		st, err := boltstore.Open(db, boltstore.Options{Timeout: time.Second})
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return st, nil
	}
	opts, err := etcd.options(log)
	if err != nil {
		return nil, err
	}
	st, err := etcdstore.Open(opts)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// storeOpener checks the store flags and the files they name (CA,
// certificates, password) and returns what opens the store they choose,
// for serve: every mistake in them is an error now, before serve
// listens, so that only etcd's absence is waited out (openServing).
func storeOpener(db string, etcd *etcdFlags, log *slog.Logger) (func() (tenants.Store, error), error) {
	if !etcd.enabled() {
		return func() (tenants.Store, error) { return openStore(db, etcd, log) }, nil
	}
	opts, err := etcd.options(log)
	if err != nil {
		return nil, err
	}
	return func() (tenants.Store, error) {
		st, err := etcdstore.Open(opts)
		if err != nil {
			return nil, err
		}
		return st, nil
	}, nil
}

// Waits of openServing between two attempts; an attempt against an etcd
// that does not answer takes etcdstore.DefaultCallTimeout already.
const (
	minOpenRetry = 250 * time.Millisecond
	maxOpenRetry = 2 * time.Second
)

// openServing opens the store serve runs on, checks that the master key
// opens what the store holds sealed, and publishes the first snapshot in
// cur; it returns the store and its tenants. While the store does not
// answer (etcd unreachable: etcdstore.ErrUnreachable, or a deadline) it
// logs why and tries again, until ctx ends: the caller's listeners answer
// 503 meanwhile. Every other error ends it: a database that cannot be
// opened, a store of another schema, credentials etcd refuses, a master
// key that does not open the store.
func openServing(ctx context.Context, open func() (tenants.Store, error), sealer *seal.Sealer, keyFile string,
	cur *tenants.Current, log *slog.Logger) (tenants.Store, []tenants.Tenant, error) {
	wait := minOpenRetry
	for attempt := 1; ; attempt++ {
		st, all, err := openOnce(ctx, open, sealer, keyFile, cur)
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("store open: serving", "attempts", attempt)
			}
			return st, all, nil
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case !errors.Is(err, etcdstore.ErrUnreachable) && !errors.Is(err, context.DeadlineExceeded):
			return nil, nil, err
		}
		log.Error("store unreachable: not ready, and Check denies every request (503) until it answers",
			"err", err, "attempt", attempt, "retry_in", wait.String())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		wait = min(2*wait, maxOpenRetry)
	}
}

// openOnce is one attempt of openServing; it closes the store it opened
// when a later step fails.
func openOnce(ctx context.Context, open func() (tenants.Store, error), sealer *seal.Sealer, keyFile string,
	cur *tenants.Current) (tenants.Store, []tenants.Tenant, error) {
	st, err := open()
	if err != nil {
		return nil, nil, err
	}
	all, err := st.Tenants(ctx)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("read tenants: %w", err)
	}
	// Before the first snapshot is published: a replica with another
	// master key never answers a Check.
	if err := checkMasterKey(ctx, st, all, sealer, keyFile); err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := cur.Refresh(ctx, st); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("read tenants: %w", err)
	}
	return st, all, nil
}

// maxSecretFile bounds a password file.
const maxSecretFile = 4096

// readSecretFile reads a password from a file that only its owner may
// read, without one trailing newline. Errors never show the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s: readable by group or others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("%s: longer than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s: the file is empty", path)
	}
	return s, nil
}
