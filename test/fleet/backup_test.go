package fleet_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// TestBackupRecordsAcrossBackends: the records of a store (one of
// everything a store keeps) go from bbolt to etcd and from etcd to bbolt
// byte for byte, expiring records keep their expiry (a used assertion id
// is still refused, a revocation still in the snapshot), and a restore
// into a store that is not empty is refused unless it replaces it.
func TestBackupRecordsAcrossBackends(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	o := newOpener(t, c)
	cli := c.Client()
	ctx := t.Context()

	dir := t.TempDir()
	src, err := boltstore.Open(filepath.Join(dir, "src.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	populate(t, src)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	fromBolt := boltRecords(t, filepath.Join(dir, "src.db"))
	delete(fromBolt, "schema")

	p := prefix(t)
	et := o.open(t, p)
	src, err = boltstore.Open(filepath.Join(dir, "src.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	records := func(put func(ns string, key, value []byte) error) error { return src.Export(ctx, put) }
	res, err := et.Restore(ctx, records, false)
	if err != nil {
		t.Fatalf("restore bbolt into etcd: %v", err)
	}
	t.Logf("bbolt → etcd: %d records in %d transactions", res.Records, res.Transactions)
	if res.Transactions != 1 {
		t.Errorf("a restore of %d records took %d transactions, want 1 (atomic)", res.Records, res.Transactions)
	}
	fromEtcd := etcdRecords(t, cli, p)
	delete(fromEtcd, "schema")
	sameRecords(t, "bbolt → etcd", fromBolt, fromEtcd)

	wantAuditIntact(t, "bbolt → etcd", et)
	acme := mustInternalID(t, et, "acme")
	wantErrIs(t, et.UseAssertionID(ctx, acme, "_assertion-1", time.Now().Add(time.Hour)), tenants.ErrReplay, "assertion id used before the backup, at the restored etcd store")
	snap, err := et.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Revoked(acme, "any-user", "sid-1", testNow.Add(-time.Minute)) {
		t.Error("a session revoked before the backup is not revoked in the restored etcd store")
	}

	// A fleet that signs people in holds attempt counters under the
	// prefix: rate-limit state, left out of a backup, never an error.
	if _, err := et.Counter("accountSignIns", time.Hour).Add(ctx, sha256.Sum256([]byte("someone")), time.Now()); err != nil {
		t.Fatal(err)
	}

	// etcd → bbolt: a new file holding the very records.
	back := filepath.Join(dir, "back.db")
	err = boltstore.Create(back, func(put func(ns string, key, value []byte) error) error {
		_, err := et.Export(ctx, put)
		return err
	})
	if err != nil {
		t.Fatalf("etcd → bbolt: %v", err)
	}
	fromBack := boltRecords(t, back)
	delete(fromBack, "schema")
	sameRecords(t, "etcd → bbolt", fromEtcd, fromBack)
	bt, err := boltstore.Open(back, boltstore.Options{})
	if err != nil {
		t.Fatalf("the bbolt copy of etcd does not open: %v", err)
	}
	defer bt.Close()
	wantAuditIntact(t, "etcd → bbolt", bt)
	wantErrIs(t, bt.UseAssertionID(ctx, acme, "_assertion-1", time.Now().Add(time.Hour)), tenants.ErrReplay, "assertion id used before the backup, at the bbolt copy of etcd")

	// Not empty: refused whole, unless replacing.
	other := o.open(t, prefix(t))
	mustApplySimple(t, other, "initech")
	_, err = other.Restore(ctx, records, false)
	wantErrIs(t, err, tenants.ErrNotEmpty, "restore into a store that holds a tenant")
	if _, err := other.Tenant(ctx, "acme"); err == nil {
		t.Error("a refused restore wrote the backup's tenant")
	}
	if _, err := other.Restore(ctx, records, true); err != nil {
		t.Fatalf("restore with replace: %v", err)
	}
	if _, err := other.Tenant(ctx, "initech"); err == nil {
		t.Error("restore with replace kept a tenant the backup does not have")
	}
	if _, err := other.Tenant(ctx, "acme"); err != nil {
		t.Errorf("restore with replace: acme: %v", err)
	}

	// Larger than one transaction: written in several, all of it.
	big, err := boltstore.Open(filepath.Join(dir, "big.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	var many []tenants.Tenant
	for i := range 150 {
		many = append(many, tenants.Tenant{ID: fmt.Sprintf("t%03d", i)})
	}
	if _, err := big.ApplyTenants(ctx, many, testOpts); err != nil {
		t.Fatal(err)
	}
	large := o.open(t, prefix(t))
	res, err = large.Restore(ctx, func(put func(ns string, key, value []byte) error) error { return big.Export(ctx, put) }, false)
	if err != nil {
		t.Fatalf("restore of 150 tenants: %v", err)
	}
	t.Logf("150 tenants: %d records in %d transactions", res.Records, res.Transactions)
	if res.Transactions < 2 {
		t.Errorf("150 tenants restored in %d transaction(s); etcd allows 128 operations in one", res.Transactions)
	}
	if got, err := large.Tenants(ctx); err != nil || len(got) != 150 {
		t.Errorf("after the restore etcd holds %d tenants (%v), want 150", len(got), err)
	}
}

func sameRecords(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) < 8 {
		t.Fatalf("%s: only %d records: %v", what, len(want), want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: record %s: want %s, got %s", what, k, v, g)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s is in the copy only", what, k)
		}
	}
}

// TestBackupRestoreWithTheBinary moves a running store from one machine
// to a fleet and back with the commands docs/fleet.md gives: backup
// --server of a bbolt file that a serve holds while writes go on, restore
// into etcd, backup of etcd, restore into a new bbolt file. Every store on
// the way answers as the first did: a session signed before the backup
// verifies, a session signed out before it stays refused, the password
// still signs in. A restore with another master key, or into a store that
// is not empty, is refused with one line and writes nothing.
func TestBackupRestoreWithTheBinary(t *testing.T) {
	c := etcdcluster.Start(t, etcdcluster.Options{Members: 1, ClientCertAuth: true})
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	key := filepath.Join(dir, "tg.key")
	db := filepath.Join(dir, "one.db")
	token := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(token, []byte("backup-test-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = proc.Env()
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return stderr.String(), err
		}
		return string(out), nil
	}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("tenantgate %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return out
	}
	refused := func(what, want string, args ...string) {
		t.Helper()
		out, err := run("", args...)
		line := strings.TrimSpace(out)
		if err == nil || strings.Count(line, "\n") != 0 || !strings.Contains(line, want) {
			t.Errorf("%s: exit %v, stderr %q; want a one-line error saying %q", what, err, out, want)
		}
	}
	etcd := []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-ca-file", c.CAFile,
		"--etcd-cert-file", c.CertFile, "--etcd-key-file", c.KeyFile}
	onEtcd := func(p string) []string {
		return append([]string{"--etcd-prefix", p, "--master-key-file", key}, etcd...)
	}

	bolt := []string{"--db", db, "--master-key-file", key}
	mustRun("", append([]string{"tenants", "apply", "-f", write("acme.yaml", fleetTenants)}, bolt...)...)
	mustRun("correct-horse-battery\n", append([]string{"users", "add", "--tenant", "acme", "--email", "ann@acme.test", "--role", "member", "--password-stdin"}, bolt...)...)

	one := startReplica(t, bin, "serve on bbolt", append(bolt, "--admin-token-file", token)...)
	kept := one.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	gone := one.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	if resp := one.form(t, "acme.app.test", "/_auth/logout", []*http.Cookie{gone}, url.Values{}); resp.StatusCode >= 400 {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}

	refused("backup --db of the file serve holds", "--server", "backup", "--db", db, "--out", filepath.Join(dir, "locked.db"))

	// Online: writes go on through the admin API while the copy is read.
	server := []string{"--server", "http://" + one.adm, "--admin-token-file", token}
	var wrote atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			file := fmt.Sprintf("tenants:\n  - id: busy-%d\n    methods: [{type: password}]\n", i)
			if _, err := run(file, append([]string{"tenants", "apply", "-f", "-"}, server...)...); err == nil {
				wrote.Add(1)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	online := filepath.Join(dir, "online.db")
	mustRun("", append([]string{"backup", "--out", online}, server...)...)
	close(stop)
	wg.Wait()
	t.Logf("%d tenants applied while the backup ran", wrote.Load())
	if fi, err := os.Stat(online); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want mode 0600", err, fi.Mode())
	}
	refused("backup over an existing file", "exists", append([]string{"backup", "--out", online}, server...)...)

	// The copy is a database serve opens directly.
	onCopy := startReplica(t, bin, "serve on the backup", "--db", online, "--master-key-file", key)
	answersAsBefore(t, onCopy, kept, gone)
	onCopy.proc.Stop()

	// Migration: restore into etcd.
	p := prefix(t)
	otherKey := filepath.Join(dir, "other.key")
	if err := os.WriteFile(otherKey, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("restore under another master key", "does not open",
		append([]string{"restore", "--in", online, "--etcd-prefix", p, "--master-key-file", otherKey}, etcd...)...)
	if n := len(etcdRecords(t, c.Client(), p)); n != 0 {
		t.Errorf("a refused restore wrote %d keys to etcd", n)
	}
	mustRun("", append([]string{"restore", "--in", online}, onEtcd(p)...)...)
	refused("restore into a store that is not empty", "--replace", append([]string{"restore", "--in", online}, onEtcd(p)...)...)
	mustRun("", append([]string{"restore", "--in", online, "--replace"}, onEtcd(p)...)...)

	fleet := startReplica(t, bin, "replica on etcd", append(onEtcd(p), "--admin-token-file", token)...)
	answersAsBefore(t, fleet, kept, gone)
	fleet.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")

	// A replica streams a copy of etcd, built at one revision.
	viaReplica := filepath.Join(dir, "via-replica.db")
	mustRun("", "backup", "--out", viaReplica, "--server", "http://"+fleet.adm, "--admin-token-file", token)
	copied, err := boltstore.Open(viaReplica, boltstore.Options{})
	if err != nil {
		t.Fatalf("the backup a replica on etcd streamed does not open: %v", err)
	}
	if _, err := copied.Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("the backup a replica on etcd streamed: acme: %v", err)
	}
	copied.Close()

	// And back: etcd to a new bbolt file.
	fromEtcd := filepath.Join(dir, "from-etcd.db")
	mustRun("", append([]string{"backup", "--out", fromEtcd}, onEtcd(p)...)...)
	two := filepath.Join(dir, "two.db")
	refused("restore into bbolt under another master key", "does not open", "restore", "--in", fromEtcd, "--db", two, "--master-key-file", otherKey)
	if _, err := os.Stat(two); err == nil {
		t.Error("a refused restore created the database file")
	}
	mustRun("", "restore", "--in", fromEtcd, "--db", two, "--master-key-file", key)
	refused("restore into bbolt that is not empty", "--replace", "restore", "--in", fromEtcd, "--db", two, "--master-key-file", key)
	last := startReplica(t, bin, "serve on the restored bbolt", "--db", two, "--master-key-file", key)
	answersAsBefore(t, last, kept, gone)
	last.signIn(t, "acme.app.test", "ann@acme.test", "correct-horse-battery")
	last.proc.Stop()

	// --replace: the file holds the backup's content and nothing else.
	mustRun("", append([]string{"tenants", "apply", "-f", write("globex.yaml", globexTenant)}, "--db", two, "--master-key-file", key)...)
	mustRun("", "restore", "--in", online, "--db", two, "--master-key-file", key, "--replace")
	list := mustRun("", "tenants", "list", "--db", two, "--master-key-file", key)
	if strings.Contains(list, "globex") || !strings.Contains(list, "acme") {
		t.Errorf("after restore --replace, tenants list = %q; want acme and not globex", list)
	}
}

// answersAsBefore checks that r accepts the session kept (ann, member of
// acme) and refuses the one signed out.
func answersAsBefore(t *testing.T, r *replica, kept, gone *http.Cookie) {
	t.Helper()
	if a := r.ask(t, "acme.app.test", kept.Value); a.status != 200 || a.headers["x-user-email"] != "ann@acme.test" || a.headers["x-user-roles"] != "member" {
		t.Errorf("%s: session signed before the backup = %d %v, want ann, member", r.name, a.status, a.headers)
	}
	if a := r.ask(t, "acme.app.test", gone.Value); a.status != 401 {
		t.Errorf("%s: session signed out before the backup = %d, want 401", r.name, a.status)
	}
}
