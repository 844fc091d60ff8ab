package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

func newBackupCmd() *cobra.Command {
	var sf storeFlags
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent copy of the store as a bbolt file that serve --db opens",
		Long: `Write a consistent copy of the store (--db, the --etcd-* flags, or a running server's
with --server URL and --admin-token-file) to FILE, a bbolt file that 'tenantgate serve
--db FILE' opens directly with the same --master-key-file. The copy is read in one read
transaction (bbolt) or at one revision (etcd). Signing keys and client secrets stay
sealed under the master key: they are copied as bytes, never opened, and backup does not
read the master key. FILE is written with mode 0600 and must not exist: backup never
replaces a file. A bbolt file that a running serve holds is backed up through that
server: --server URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("backup needs --out FILE, the file to write (it must not exist)")
			}
			remote, err := sf.serverMode(cmd)
			if err != nil {
				return err
			}
			if !remote {
				if err := sf.etcd.check(cmd.Flags().Changed("db")); err != nil {
					return err
				}
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("--out %s exists; backup never replaces a file: name a new one", out)
			}
			ctx := cmd.Context()
			var from string
			err = writeNewFile(out, func(tmp string) error {
				switch {
				case remote:
					from = "server " + sf.server
					c, err := newRemoteAdmin(sf.server, sf.adminTokenFile)
					if err != nil {
						return err
					}
					defer c.Close()
					return writeFileFrom(tmp, func(w io.Writer) error { return c.backup(ctx, w) })
				case sf.etcd.enabled():
					st, err := openStore("", &sf.etcd, nil)
					if err != nil {
						return err
					}
					defer st.Close()
					from = "etcd store " + sf.etcd.prefix
					return exportEtcd(ctx, st.(*etcdstore.Store), tmp)
				default:
					from = sf.db
					st, err := openBackupSource(sf.db)
					if err != nil {
						return err
					}
					defer st.Close()
					return writeFileFrom(tmp, func(w io.Writer) error {
						return st.Backup(ctx, func(int64) (io.Writer, error) { return w, nil })
					})
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup of %s written to %s\n", from, out)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "the file to write (mode 0600; it must not exist)")
	return cmd
}

// openBackupSource opens the bbolt file to back up: it must exist (backup
// never creates the database it copies), and a file another process holds
// is refused with the command that backs it up through that process.
func openBackupSource(db string) (*boltstore.Store, error) {
	if _, err := os.Stat(db); err != nil {
		return nil, fmt.Errorf("--db %s: %w", db, err)
	}
	st, err := boltstore.Open(db, boltstore.Options{Timeout: time.Second})
	if errors.Is(err, tenants.ErrLocked) {
		return nil, fmt.Errorf("database %s is held by a running tenantgate (serve): back it up through that server with tenantgate backup --server URL --admin-token-file FILE --out FILE", db)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// exportEtcd writes the records of the etcd store, read at one revision,
// into a new bbolt file at path.
func exportEtcd(ctx context.Context, st *etcdstore.Store, path string) error {
	return boltstore.Create(path, func(put func(ns string, key, value []byte) error) error {
		_, err := st.Export(ctx, put)
		return err
	})
}

// streamBackup writes a backup of st, a bbolt file, to what begin returns
// when it is given the size: straight from one bbolt read transaction, or,
// for etcd, from a file built at one revision in a private temporary
// directory and removed afterwards. It is what the admin API's
// GET /admin/v1/backup answers.
func streamBackup(ctx context.Context, st tenants.Store, begin func(size int64) (io.Writer, error)) error {
	switch s := st.(type) {
	case *boltstore.Store:
		return s.Backup(ctx, begin)
	case *etcdstore.Store:
		dir, err := os.MkdirTemp("", "tenantgate-backup-")
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "backup.db")
		if err := exportEtcd(ctx, s, path); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		w, err := begin(fi.Size())
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		return nil
	}
	return fmt.Errorf("backup: the store (%T) cannot be backed up", st)
}

// writeFileFrom creates path (mode 0600; it must not exist), fills it with
// write and syncs it to disk.
func writeFileFrom(path string, write func(w io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeNewFile makes the file at path all at once: fill writes a temporary
// file (a path that does not exist yet, in the same directory, which fill
// must create with mode 0600), which is checked to be a tenantgate
// database (boltstore.Open reads every record), synced, and then linked
// at path, which must not exist: an existing file is never replaced, and
// no half-written file is ever at path. The temporary file is removed in
// every case.
func writeNewFile(path string, fill func(tmp string) error) error {
	tmp, err := tempName(path)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := fill(tmp); err != nil {
		return err
	}
	if err := checkDatabase(tmp); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := linkNew(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// checkDatabase opens the database at path as serve would, which reads and
// checks every record, and closes it.
func checkDatabase(path string) error {
	st, err := boltstore.Open(path, boltstore.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("the copy is not a readable tenantgate database, nothing was written: %w", err)
	}
	return st.Close()
}

// tempName is a path in the directory of path, next to it, that does not
// exist yet.
func tempName(path string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("temporary file name: %w", err)
	}
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(b[:])), nil
}

// linkNew gives the file at tmp the name path, failing if path exists. A
// hard link refuses an existing name atomically; a file system without hard
// links gets a rename after a check.
func linkNew(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s exists; backup never replaces a file: name a new one", path)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EXDEV):
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists; backup never replaces a file: name a new one", path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("write %s: %w", path, err)
}

// syncDir makes a new or renamed name in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func newRestoreCmd() *cobra.Command {
	var sf storeFlags
	var in string
	var replace bool
	cmd := &cobra.Command{
		Use:   "restore --in FILE [--replace]",
		Short: "Fill an empty store (bbolt or etcd) from a backup",
		Long: `Fill the store (--db or the --etcd-* flags) from FILE, a file written by 'tenantgate
backup'. The store must be empty; a store that holds anything is refused unless --replace,
which replaces all of its content with the backup's.

--master-key-file must be the key the backup was made under (it must exist): a backup
it does not open is refused before anything is written. For etcd, the key must also be
the one the store's replicas use.

A bbolt file is replaced at once (a new file renamed over it); serve must not be running
on it. An etcd restore is one transaction when it fits in one (about 100 records and
1 MiB), else ordered transactions, tenants last, that stop if anything else writes to the
store meanwhile: stop the replicas' writers first (see docs/fleet.md). restore does not
take --server: it writes the store directly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return errors.New("restore needs --in FILE, a file written by tenantgate backup")
			}
			if cmd.Flags().Changed("server") {
				return errors.New("restore does not take --server: it writes the store directly; give --db PATH (with serve stopped) or the --etcd-* flags")
			}
			if _, err := sf.serverMode(cmd); err != nil {
				return err
			}
			if err := sf.etcd.check(cmd.Flags().Changed("db")); err != nil {
				return err
			}
			return runRestore(cmd.Context(), &sf, in, replace, cmd.OutOrStdout())
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&in, "in", "", "the backup file to restore")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace everything the store holds with the backup (without it, a store that is not empty is refused)")
	return cmd
}

// runRestore restores the backup at in into the store sf names. Everything
// that can refuse the restore (a backup that does not open, another
// master key, a store that is not empty) refuses it before anything is
// written.
func runRestore(ctx context.Context, sf *storeFlags, in string, replace bool, out io.Writer) error {
	if _, err := os.Stat(sf.masterKeyFile); err != nil {
		return fmt.Errorf("--master-key-file %s: %w (restore needs the master key the backup was made under)", sf.masterKeyFile, err)
	}
	sealer, err := seal.LoadOrCreateMasterKey(sf.masterKeyFile)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	backup, cleanup, err := openBackup(in)
	if err != nil {
		return err
	}
	defer cleanup()
	ts, err := backup.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("--in %s: read tenants: %w", in, err)
	}
	check, err := backup.MasterKeyCheckValue(ctx)
	if err != nil {
		return fmt.Errorf("--in %s: %w", in, err)
	}
	if what := unopened(sealer, check, ts); what != "" {
		return fmt.Errorf("master key %s does not open %s in backup %s: restore with the --master-key-file the backup was made under; nothing was written", sf.masterKeyFile, what, in)
	}
	records := func(put func(ns string, key, value []byte) error) error { return backup.Export(ctx, put) }

	if sf.etcd.enabled() {
		st, err := openStore("", &sf.etcd, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		es := st.(*etcdstore.Store)
		// The replicas on this store seal with the store's key: a backup
		// under another key would give them secrets they cannot open.
		mine, err := sealer.Seal([]byte("tenantgate"), keyCheckContext)
		if err != nil {
			return fmt.Errorf("master key check: %w", err)
		}
		stored, err := es.MasterKeyCheck(ctx, mine)
		if err != nil {
			return fmt.Errorf("master key check: %w", err)
		}
		if !opens(sealer, stored, keyCheckContext) {
			return fmt.Errorf("master key %s does not open the etcd store's sealed check value: the store's replicas use another master key; nothing was written", sf.masterKeyFile)
		}
		res, err := es.Restore(ctx, records, replace)
		if errors.Is(err, tenants.ErrNotEmpty) {
			return fmt.Errorf("%w; nothing was written (restore --replace replaces its content with the backup's)", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "restored %d records from %s into etcd prefix %s in %d transactions\n", res.Records, in, sf.etcd.prefix, res.Transactions)
		return nil
	}

	// bbolt: hold the target's lock (no serve may be running on it),
	// write the new content to a file beside it, and rename that over it.
	target, err := boltstore.Open(sf.db, boltstore.Options{Timeout: time.Second})
	if errors.Is(err, tenants.ErrLocked) {
		return fmt.Errorf("database %s is held by a running tenantgate (serve): stop it first; restore replaces the file", sf.db)
	}
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer target.Close()
	empty, err := target.Empty(ctx)
	if err != nil {
		return err
	}
	if !empty && !replace {
		return fmt.Errorf("database %s is not empty; nothing was written (restore --replace replaces its content with the backup's)", sf.db)
	}
	tmp, err := tempName(sf.db)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := boltstore.Create(tmp, records); err != nil {
		return fmt.Errorf("restore into %s: %w", sf.db, err)
	}
	if err := os.Rename(tmp, sf.db); err != nil {
		return fmt.Errorf("restore into %s: %w", sf.db, err)
	}
	if err := syncDir(filepath.Dir(sf.db)); err != nil {
		return err
	}
	fmt.Fprintf(out, "restored %s into %s\n", in, sf.db)
	return nil
}

// openBackup opens a private copy of the backup at path (so that opening
// it, which may upgrade an older file, never changes the operator's file)
// and returns it with the function that closes and removes the copy. A
// file that is not a readable tenantgate database is refused.
func openBackup(path string) (*boltstore.Store, func(), error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--in: %w", err)
	}
	defer src.Close()
	dir, err := os.MkdirTemp("", "tenantgate-restore-")
	if err != nil {
		return nil, nil, fmt.Errorf("restore: %w", err)
	}
	copyPath := filepath.Join(dir, "backup.db")
	err = writeFileFrom(copyPath, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("restore: copy %s: %w", path, err)
	}
	st, err := boltstore.Open(copyPath, boltstore.Options{Timeout: time.Second})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("--in %s is not a readable tenantgate backup: %w", path, err)
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}
