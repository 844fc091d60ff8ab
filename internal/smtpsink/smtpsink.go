// Package smtpsink runs a real SMTP server for tests: aiosmtpd, installed
// by `make tools` under .tools/aiosmtpd (or where TENANTGATE_AIOSMTPD
// says), driven by sink.py, which writes each accepted message to a
// directory the test reads.
package smtpsink

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TLS modes of a Sink.
const (
	StartTLS = "starttls"
	SMTPS    = "smtps"
	None     = "none"
)

// Options configure Start. The zero value is a STARTTLS server without
// authentication.
type Options struct {
	// TLS is StartTLS (default), SMTPS or None.
	TLS string
	// User and Password, when set, make the server require AUTH PLAIN.
	User, Password string
}

// Sink is a running SMTP server.
type Sink struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// URL is the --smtp-url that reaches it (smtp://, smtps:// or
	// smtp+insecure://, with User when set).
	URL string
	// PasswordFile holds Options.Password (for --smtp-password-file).
	PasswordFile string
	// Pool trusts the server's certificate.
	Pool *x509.CertPool
	// CAFile holds the certificate as PEM (SSL_CERT_FILE for a child).
	CAFile string
	dir    string
}

// Dir is where aiosmtpd is installed: $TENANTGATE_AIOSMTPD, else
// <repository>/.tools/aiosmtpd.
func Dir() string {
	if d := os.Getenv("TENANTGATE_AIOSMTPD"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".tools", "aiosmtpd")
}

// Start runs a Sink until the test ends. Without aiosmtpd it fails the
// test when CI is set and skips it otherwise, naming the install command.
func Start(tb testing.TB, o Options) *Sink {
	tb.Helper()
	dir := Dir()
	if _, err := os.Stat(filepath.Join(dir, "aiosmtpd")); err != nil {
		msg := "aiosmtpd not found in " + dir + ": run `make tools` (or python3 -m pip install --target " + dir + " aiosmtpd==1.4.6, or set TENANTGATE_AIOSMTPD)"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	if o.TLS == "" {
		o.TLS = StartTLS
	}
	s := &Sink{dir: tb.TempDir()}
	work := tb.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(s.Addr)

	args := []string{filepath.Join(sourceDir(), "sink.py"), "--dir", s.dir, "--port", port, "--tls", o.TLS}
	if o.TLS != None {
		cert, key := writeCertificate(tb, work)
		s.CAFile = cert
		pem, _ := os.ReadFile(cert)
		s.Pool = x509.NewCertPool()
		s.Pool.AppendCertsFromPEM(pem)
		args = append(args, "--cert", cert, "--key", key)
	}
	user := ""
	if o.User != "" {
		s.PasswordFile = filepath.Join(work, "smtp-password")
		if err := os.WriteFile(s.PasswordFile, []byte(o.Password+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "--user", o.User, "--password-file", s.PasswordFile)
		user = o.User + "@"
	}
	scheme := map[string]string{StartTLS: "smtp", SMTPS: "smtps", None: "smtp+insecure"}[o.TLS]
	s.URL = scheme + "://" + user + s.Addr

	cmd := exec.Command("python3", args...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			tb.Fatalf("start aiosmtpd: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		tb.Fatalf("aiosmtpd did not start\n%s", stderr.String())
	}
	return s
}

func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// TLSConfig is a client configuration that trusts the Sink.
func (s *Sink) TLSConfig() *tls.Config { return &tls.Config{RootCAs: s.Pool} }

// Message is one delivered message, decoded.
type Message struct {
	To, From, Subject string
	Header            mail.Header
	Text, HTML        string
	Raw               []byte
}

// Messages returns every message delivered so far, in order.
func (s *Sink) Messages(tb testing.TB) []Message {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(names)
	var out []Message
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			tb.Fatal(err)
		}
		m, err := Parse(raw)
		if err != nil {
			tb.Fatalf("message %s: %v", filepath.Base(n), err)
		}
		out = append(out, m)
	}
	return out
}

// Wait returns the messages once there are at least n, failing the test
// after timeout.
func (s *Sink) Wait(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := s.Messages(tb)
		if len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d messages delivered after %v, want %d", len(ms), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Parse decodes a multipart/alternative message as tenantgate sends it.
func Parse(raw []byte) (Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return Message{}, err
	}
	out := Message{To: m.Header.Get("To"), From: m.Header.Get("From"), Subject: subject, Header: m.Header, Raw: raw}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return Message{}, err
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Message{}, err
		}
		var body io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return Message{}, err
		}
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			out.Text = string(b)
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
			out.HTML = string(b)
		}
	}
	return out, nil
}

func writeCertificate(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtpsink"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

// Port is the Sink's port.
func (s *Sink) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
