package tlsfiles_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testca"
	"github.com/tenantgate/tenantgate/internal/tlsfiles"
)

// clock is a test clock that moves only when told to.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuffer collects a logger's JSON lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the logged lines that contain s.
func (l *logBuffer) lines(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// env is a Server on files in a temporary directory, with its clock and log.
type env struct {
	ca       *testca.CA
	files    tlsfiles.Files
	clock    *clock
	log      *logBuffer
	srv      *tlsfiles.Server
	original *testca.Leaf
}

// newEnv writes a server certificate of a fresh CA (and, with mTLS, that
// CA as the client CA) and starts a Server on them.
func newEnv(t *testing.T, mTLS bool) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		ca:    testca.New(t, "test CA"),
		files: tlsfiles.Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")},
		clock: newClock(),
		log:   &logBuffer{},
	}
	e.original = e.ca.Server(t)
	e.original.WriteFiles(t, e.files.Cert, e.files.Key)
	if mTLS {
		e.files.ClientCA = filepath.Join(dir, "ca.crt")
		testca.Write(t, e.files.ClientCA, e.ca.PEM)
	}
	srv, err := tlsfiles.New(e.files, slog.New(slog.NewJSONHandler(e.log, nil)), e.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e
}

// client is a TLS client trusting the env's CA, presenting cert if non-nil
// (whichever CAs the server asks for, as a misconfigured client would).
func (e *env) client(cert *testca.Leaf) *tls.Config {
	cfg := &tls.Config{RootCAs: e.ca.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			panic(err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg
}

// result is one connection's outcome: the server's and the client's error
// (nil when a byte crossed after the handshake) and the serial number of
// the certificate the server presented.
type result struct {
	serverErr, clientErr error
	serial               *big.Int
}

// handshake connects client to the Server over loopback TCP; on success
// the server sends one byte, which the client reads (in TLS 1.3 a refused
// client certificate shows up on the client only there).
func (e *env) handshake(t *testing.T, client *tls.Config) result {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		tc := tls.Server(c, e.srv.Config())
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte{1})
		}
		tc.Close()
		done <- err
	}()
	var r result
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		r.serial = conn.ConnectionState().PeerCertificates[0].SerialNumber
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(conn, make([]byte, 1))
		conn.Close()
	}
	r.clientErr = err
	r.serverErr = <-done
	return r
}

// serves checks that a connection succeeds and the server presents want.
func (e *env) serves(t *testing.T, want *testca.Leaf) {
	t.Helper()
	r := e.handshake(t, e.client(nil))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
	}
	if r.serial.Cmp(want.Cert.SerialNumber) != 0 {
		t.Fatalf("server presented serial %s, want %s", r.serial, want.Cert.SerialNumber)
	}
}

// TestReloadsReplacedFiles: a new handshake presents the new certificate
// once the files are replaced, whichever way the writer replaces them, and
// the files are looked at no more than once per CheckInterval.
func TestReloadsReplacedFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, e *env, l *testca.Leaf)
	}{
		{"rename over the old files", func(t *testing.T, e *env, l *testca.Leaf) {
			l.WriteFiles(t, e.files.Cert, e.files.Key)
		}},
		{"rewritten in place", func(t *testing.T, e *env, l *testca.Leaf) {
			for path, data := range map[string][]byte{e.files.Cert: l.CertPEM, e.files.Key: l.KeyPEM} {
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"Kubernetes secret volume (..data symlink swapped)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			replace := tc.replace
			if replace == nil {
				e, replace = newSecretVolumeEnv(t)
			} else {
				e = newEnv(t, false)
			}
			e.serves(t, e.original)

			next := e.ca.Server(t)
			replace(t, e, next)
			e.serves(t, e.original) // within CheckInterval of the last look
			e.clock.advance(tlsfiles.CheckInterval)
			e.serves(t, next)
			e.serves(t, next)
			if got := e.log.lines("tls files reloaded"); len(got) != 1 || !strings.Contains(got[0], `"serial":"`+next.Cert.SerialNumber.String()+`"`) {
				t.Errorf("log lines about the reload: %q, want one naming serial %s", got, next.Cert.SerialNumber)
			}
		})
	}
}

// newSecretVolumeEnv lays the files out as a Kubernetes secret volume does:
// tls.crt -> ..data/tls.crt, ..data -> ..<version>/; an update writes a new
// version directory and renames a new ..data symlink over the old one.
func newSecretVolumeEnv(t *testing.T) (*env, func(t *testing.T, e *env, l *testca.Leaf)) {
	t.Helper()
	dir := t.TempDir()
	version := 0
	publish := func(t *testing.T, l *testca.Leaf) {
		version++
		v := filepath.Join(dir, "..v"+string(rune('0'+version)))
		if err := os.Mkdir(v, 0o700); err != nil {
			t.Fatal(err)
		}
		l.WriteFiles(t, filepath.Join(v, "tls.crt"), filepath.Join(v, "tls.key"))
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(v), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	ca := testca.New(t, "test CA")
	first := ca.Server(t)
	publish(t, first)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{ca: ca, clock: newClock(), log: &logBuffer{}, original: first,
		files: tlsfiles.Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")}}
	srv, err := tlsfiles.New(e.files, slog.New(slog.NewJSONHandler(e.log, nil)), e.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e, func(t *testing.T, _ *env, l *testca.Leaf) { publish(t, l) }
}

// TestBadChangeKeepsLastGoodCertificate: files replaced by something
// unusable leave the last good certificate in use, with one warning naming
// the file, however many handshakes follow; the next good change is used.
func TestBadChangeKeepsLastGoodCertificate(t *testing.T) {
	other := testca.New(t, "other CA").Server(t)
	for _, tc := range []struct {
		name   string
		mTLS   bool
		break_ func(t *testing.T, e *env)
		want   string
	}{
		{"half-written certificate", false, func(t *testing.T, e *env) {
			l := e.ca.Server(t)
			testca.Write(t, e.files.Key, l.KeyPEM)
			testca.Write(t, e.files.Cert, l.CertPEM[:len(l.CertPEM)/2])
		}, "tls.crt"},
		{"key of another certificate", false, func(t *testing.T, e *env) {
			testca.Write(t, e.files.Cert, e.ca.Server(t).CertPEM)
		}, "tls.key"},
		{"new key before its certificate", false, func(t *testing.T, e *env) {
			testca.Write(t, e.files.Key, other.KeyPEM)
		}, "private key does not match public key"},
		{"empty key file", false, func(t *testing.T, e *env) {
			testca.Write(t, e.files.Key, nil)
		}, "tls.key"},
		{"certificate removed", false, func(t *testing.T, e *env) {
			if err := os.Remove(e.files.Cert); err != nil {
				t.Fatal(err)
			}
		}, "tls.crt"},
		{"client CA not PEM", true, func(t *testing.T, e *env) {
			testca.Write(t, e.files.ClientCA, []byte("not a certificate\n"))
		}, "ca.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mTLS)
			var client *testca.Leaf
			if tc.mTLS {
				client = e.ca.Client(t, "envoy")
			}
			ok := func(want *testca.Leaf) {
				t.Helper()
				r := e.handshake(t, e.client(client))
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
				}
				if r.serial.Cmp(want.Cert.SerialNumber) != 0 {
					t.Fatalf("server presented serial %s, want %s (the last good one)", r.serial, want.Cert.SerialNumber)
				}
			}
			tc.break_(t, e)
			for range 3 {
				e.clock.advance(tlsfiles.CheckInterval)
				ok(e.original)
			}
			warnings := e.log.lines(`"level":"WARN"`)
			if len(warnings) != 1 || !strings.Contains(warnings[0], tc.want) {
				t.Errorf("warnings: %q, want one line saying %q", warnings, tc.want)
			}

			fixed := e.ca.Server(t)
			fixed.WriteFiles(t, e.files.Cert, e.files.Key)
			if tc.mTLS {
				testca.Write(t, e.files.ClientCA, e.ca.PEM)
			}
			e.clock.advance(tlsfiles.CheckInterval)
			ok(fixed)
		})
	}
}

// TestNewRefusesBadFiles: at start, unusable files are an error of one line
// naming the file and what is wrong with it.
func TestNewRefusesBadFiles(t *testing.T) {
	ca := testca.New(t, "test CA")
	good, other := ca.Server(t), ca.Server(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		testca.Write(t, path, data)
		return path
	}
	cert, key := write("tls.crt", good.CertPEM), write("tls.key", good.KeyPEM)
	for _, tc := range []struct {
		name  string
		files tlsfiles.Files
		want  []string
	}{
		{"certificate missing", tlsfiles.Files{Cert: filepath.Join(dir, "nope.crt"), Key: key}, []string{"nope.crt", "no such file"}},
		{"key missing", tlsfiles.Files{Cert: cert, Key: filepath.Join(dir, "nope.key")}, []string{"nope.key", "no such file"}},
		{"certificate empty", tlsfiles.Files{Cert: write("empty.crt", nil), Key: key}, []string{"empty.crt", "empty file"}},
		{"certificate cut short", tlsfiles.Files{Cert: write("half.crt", good.CertPEM[:len(good.CertPEM)-40]), Key: key}, []string{"half.crt", "no PEM CERTIFICATE block"}},
		{"key in the certificate file", tlsfiles.Files{Cert: key, Key: key}, []string{"tls.key", "no PEM CERTIFICATE block"}},
		{"key of another certificate", tlsfiles.Files{Cert: cert, Key: write("other.key", other.KeyPEM)}, []string{"other.key", "does not match"}},
		{"certificate as the key", tlsfiles.Files{Cert: cert, Key: cert}, []string{"key " + cert}},
		{"no key", tlsfiles.Files{Cert: cert}, []string{"key"}},
		{"client CA missing", tlsfiles.Files{Cert: cert, Key: key, ClientCA: filepath.Join(dir, "nope-ca.crt")}, []string{"client CA", "nope-ca.crt"}},
		{"client CA garbage", tlsfiles.Files{Cert: cert, Key: key, ClientCA: write("bad-ca.crt", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))}, []string{"client CA", "bad-ca.crt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsfiles.New(tc.files, slog.New(slog.DiscardHandler), time.Now)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

// TestMutualTLS: with a client CA, only a client certificate that CA
// issued for client authentication completes the handshake.
func TestMutualTLS(t *testing.T) {
	e := newEnv(t, true)
	for _, tc := range []struct {
		name   string
		client *tls.Config
		want   string // in the server's handshake error; "" means accepted
	}{
		{"certificate from the client CA", e.client(e.ca.Client(t, "envoy")), ""},
		{"no client certificate", e.client(nil), "didn't provide a certificate"},
		{"certificate from another CA", e.client(testca.New(t, "other CA").Client(t, "envoy")), "unknown authority"},
		{"server certificate of the client CA", e.client(e.ca.Server(t)), "incompatible key usage"},
		{"TLS 1.1", func() *tls.Config {
			c := e.client(e.ca.Client(t, "envoy"))
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}(), "unsupported versions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.handshake(t, tc.client)
			if tc.want == "" {
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("refused: server %v, client %v", r.serverErr, r.clientErr)
				}
				return
			}
			if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), tc.want) {
				t.Errorf("server handshake error %v, want one saying %q", r.serverErr, tc.want)
			}
			if r.clientErr == nil {
				t.Error("the client completed a connection")
			}
		})
	}
}

// TestClientCARotation: a replaced client CA file is the one new
// connections are verified against.
func TestClientCARotation(t *testing.T) {
	e := newEnv(t, true)
	oldClient := e.ca.Client(t, "envoy")
	next := testca.New(t, "next CA")
	newClient := next.Client(t, "envoy")
	if r := e.handshake(t, e.client(oldClient)); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("before rotation: server %v, client %v", r.serverErr, r.clientErr)
	}
	testca.Write(t, e.files.ClientCA, next.PEM)
	e.clock.advance(tlsfiles.CheckInterval)
	if r := e.handshake(t, e.client(oldClient)); r.serverErr == nil {
		t.Error("after rotation, the retired CA's client certificate is still accepted")
	}
	if r := e.handshake(t, e.client(newClient)); r.serverErr != nil || r.clientErr != nil {
		t.Errorf("after rotation, the new CA's client: server %v, client %v", r.serverErr, r.clientErr)
	}
}
