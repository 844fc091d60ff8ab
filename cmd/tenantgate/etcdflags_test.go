package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEtcdFlags: the --etcd-* flags exist on serve and on every command
// that takes --db, and refuse to be mixed with --db or --server, however
// each is given (flag, TENANTGATE_* environment, config file). The errors
// are one line and name both flags. No etcd runs here: test/fleet runs the
// commands on a real one.
func TestEtcdFlags(t *testing.T) {
	c := newCLI(t)
	ep := "https://127.0.0.1:1"
	cfg := c.writeFile("etcd.yaml", "etcd-endpoints: "+ep+"\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"serve --db and --etcd-endpoints", nil,
			[]string{"serve", "--db", c.db, "--etcd-endpoints", ep}, []string{"--db", "--etcd-endpoints", "mutually exclusive"}},
		{"tenants --db and --etcd-endpoints", nil,
			[]string{"tenants", "list", "--db", c.db, "--etcd-endpoints", ep}, []string{"--db", "--etcd-endpoints", "mutually exclusive"}},
		{"users --db and --etcd-endpoints", nil,
			[]string{"users", "list", "--tenant", "acme", "--db", c.db, "--etcd-endpoints", ep}, []string{"--db", "--etcd-endpoints"}},
		{"TENANTGATE_ETCD_ENDPOINTS and --db", map[string]string{"TENANTGATE_ETCD_ENDPOINTS": ep},
			[]string{"tenants", "list", "--db", c.db}, []string{"--db", "--etcd-endpoints", "TENANTGATE_ETCD_ENDPOINTS"}},
		{"TENANTGATE_DB and --etcd-endpoints", map[string]string{"TENANTGATE_DB": c.db},
			[]string{"serve", "--etcd-endpoints", ep}, []string{"--db", "--etcd-endpoints", "TENANTGATE_DB"}},
		{"config file etcd-endpoints and --db", nil,
			[]string{"tenants", "list", "--config", cfg, "--db", c.db}, []string{"--db", "--etcd-endpoints"}},
		{"--server and --etcd-endpoints", nil,
			[]string{"tenants", "list", "--server", "http://127.0.0.1:1", "--admin-token-file", c.writeFile("tok", "x"), "--etcd-endpoints", ep},
			[]string{"--server", "--etcd-endpoints", "mutually exclusive"}},
		{"--etcd-ca-file without endpoints", nil,
			[]string{"tenants", "list", "--etcd-ca-file", c.writeFile("ca.pem", "x")}, []string{"--etcd-ca-file", "--etcd-endpoints"}},
		{"--etcd-username without a password file", nil,
			[]string{"tenants", "list", "--etcd-endpoints", ep, "--etcd-username", "tg"}, []string{"--etcd-username", "--etcd-password-file"}},
		{"not a URL", nil,
			[]string{"tenants", "list", "--etcd-endpoints", "127.0.0.1:2379"}, []string{"--etcd-endpoints", "not an http:// or https:// URL"}},
		{"http:// to another host", nil,
			[]string{"tenants", "list", "--etcd-endpoints", "http://etcd.example:2379"}, []string{"--etcd-endpoints", "http:// only to a loopback address"}},
		{"http:// and https://", nil,
			[]string{"tenants", "list", "--etcd-endpoints", "http://127.0.0.1:1," + ep}, []string{"--etcd-endpoints", "not both"}},
		{"TLS files with http://", nil,
			[]string{"tenants", "list", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-ca-file", c.writeFile("ca2.pem", "x")}, []string{"--etcd-ca-file", "https://"}},
		{"CA file without a certificate", nil,
			[]string{"tenants", "list", "--etcd-endpoints", ep, "--etcd-ca-file", c.writeFile("bad.pem", "x")}, []string{"--etcd-ca-file", "no PEM certificate"}},
		// serve waits for an etcd that does not answer, never for a
		// mistake in its flags or files.
		{"serve: CA file without a certificate", nil,
			[]string{"serve", "--etcd-endpoints", ep, "--etcd-ca-file", c.writeFile("bad2.pem", "x")}, []string{"--etcd-ca-file", "no PEM certificate"}},
		{"serve: CA file missing", nil,
			[]string{"serve", "--etcd-endpoints", ep, "--etcd-ca-file", c.writeFile("gone.pem", "x") + ".missing"}, []string{"--etcd-ca-file", "no such file"}},
		{"serve: client key missing", nil,
			[]string{"serve", "--etcd-endpoints", ep, "--etcd-cert-file", c.writeFile("c.pem", "x"), "--etcd-key-file", c.writeFile("k.pem", "x") + ".missing"},
			[]string{"--etcd-cert-file and --etcd-key-file"}},
		{"password file readable by others", nil,
			[]string{"tenants", "list", "--etcd-endpoints", ep, "--etcd-username", "tg", "--etcd-password-file", writeMode(t, c, "pw", "s3cr3t-pw", 0o644)},
			[]string{"--etcd-password-file", "chmod 600"}},
		{"--store-max-staleness 0", nil,
			[]string{"serve", "--etcd-endpoints", ep, "--store-max-staleness", "0s"}, []string{"--store-max-staleness"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errs := runBare(tc.args...)
			if code == 0 {
				t.Fatal("exit 0")
			}
			if !strings.HasPrefix(errs, "tenantgate: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("stderr %q is not one line", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not say %q", errs, w)
				}
			}
			if strings.Contains(errs, "s3cr3t-pw") {
				t.Errorf("stderr %q shows the password", errs)
			}
		})
	}
}

// writeMode writes a file with the given mode.
func writeMode(t *testing.T, c *cli, name, content string, mode uint32) string {
	p := c.writeFile(name, content)
	if err := chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEtcdUnreachable: a command given an etcd that does not answer fails
// within the store's call timeout with one line that names the endpoint
// and what to check, instead of waiting for ever.
func TestEtcdUnreachable(t *testing.T) {
	start := time.Now()
	code, _, errs := runBare("tenants", "list", "--etcd-endpoints", "https://127.0.0.1:1")
	if code == 0 {
		t.Fatal("exit 0")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("failed after %v", d)
	}
	for _, w := range []string{"https://127.0.0.1:1", "did not answer", "--etcd-ca-file"} {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr %q does not say %q", errs, w)
		}
	}
}

// TestEtcdFlagsInHelp: every store command documents the etcd flags;
// serve documents --store-max-staleness too.
func TestEtcdFlagsInHelp(t *testing.T) {
	etcd := []string{"--etcd-endpoints", "--etcd-prefix", "--etcd-ca-file", "--etcd-cert-file", "--etcd-key-file", "--etcd-username", "--etcd-password-file"}
	for _, cmd := range [][]string{{"serve"}, {"tenants", "apply"}, {"tenants", "list"}, {"tenants", "get"}, {"tenants", "delete"},
		{"users", "add"}, {"users", "list"}, {"users", "delete"}} {
		var code int
		var out string
		code, out, _ = runBare(append(cmd, "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d", cmd, code)
		}
		want := etcd
		if cmd[0] == "serve" {
			want = append(want, "--store-max-staleness")
		}
		for _, f := range want {
			if !strings.Contains(out, f) {
				t.Errorf("%v --help lacks %s", cmd, f)
			}
		}
	}
}

// TestMasterKeyMismatch: a process whose master key does not open the
// store's sealed keys refuses to start (serve) or to write (tenants
// apply), with one line naming the key file and the tenant, and changes
// nothing.
func TestMasterKeyMismatch(t *testing.T) {
	c := newCLI(t)
	c.mustRun("", "tenants", "apply", "-f", c.writeFile("t.yaml", twoTenants))
	other := filepath.Join(c.dir, "other.key")
	for _, args := range [][]string{
		{"serve", "--db", c.db, "--master-key-file", other, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"},
		{"tenants", "apply", "-f", c.writeFile("t2.yaml", "tenants:\n  - id: initech\n    methods: [{type: password}]\n"), "--db", c.db, "--master-key-file", other},
	} {
		code, errs, ok := runBounded(args, 20*time.Second)
		if !ok {
			t.Fatalf("%v: still running after 20s with another master key", args[:2])
		}
		if code == 0 {
			t.Fatalf("%v: exit 0 with another master key", args[:2])
		}
		for _, w := range []string{"master key " + other + " does not open", `tenant "acme"`, "--master-key-file"} {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr %q does not say %q", args[:2], errs, w)
			}
		}
		if strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: stderr %q is not one line", args[:2], errs)
		}
	}
	if out := c.mustRun("", "tenants", "list"); strings.Contains(out, "initech") {
		t.Error("the apply with another master key wrote a tenant")
	}
}

func chmod(path string, mode uint32) error { return os.Chmod(path, os.FileMode(mode)) }

// runBare runs a command line as given (no --db added, unlike cli.run) and
// returns exit code, stdout and stderr.
func runBare(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// runBounded runs a command line that is expected to fail at once (serve
// refusing to start); ok is false when it is still running after d, and
// it is then stopped.
func runBounded(args []string, d time.Duration) (code int, stderr string, ok bool) {
	var out, errb syncBuffer
	root := newRootCmd(strings.NewReader(""), &out, &errb)
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(&errb, "tenantgate: %s\n", oneLine(err))
			return 1, errb.String(), true
		}
		return 0, errb.String(), true
	case <-time.After(d):
		cancel()
		<-done
		return 0, errb.String(), false
	}
}
