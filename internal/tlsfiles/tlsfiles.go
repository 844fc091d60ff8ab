// Package tlsfiles serves TLS from PEM files that are replaced while the
// process runs. cert-manager, Kubernetes secret volumes and Istio rotate
// certificates by writing new files (a secret volume swaps a symlink), never
// by restarting the process, so a server that read its files once would
// present an expired certificate, or trust a retired CA, until restarted.
//
// A Server looks at its files during a handshake, at most once per
// CheckInterval, by their size, modification time and identity (os.Stat,
// which follows symlinks), and reads them again only when one changed. A
// change that does not make a usable configuration (a half-written file, a
// key that does not match the certificate) keeps the last good one and logs
// one warning; the next change is tried again.
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, a handshake looks at the files: a
// rotation is in use at most this long after the files change (for new
// connections; established ones keep the certificate they began with).
const CheckInterval = time.Second

// Files names the PEM files of a TLS server.
type Files struct {
	// Cert is the certificate chain, leaf first; Key is its private key.
	Cert, Key string
	// ClientCA, if set, turns on mutual TLS: every client must present a
	// certificate that chains to one of the CA certificates in this file,
	// or the handshake fails.
	ClientCA string
}

// Server is a TLS server configuration read from Files, and read again
// when they change. Its methods are safe for concurrent use.
type Server struct {
	files Files
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	nextCheck time.Time
	// stamps are the files as last looked at, whether what they held was
	// usable or not: a bad change is reported once, not on every check.
	stamps [3]stamp
	// contents are the bytes current was built from.
	contents [3][]byte
	current  *tls.Config
}

// New reads files and returns a Server serving them. It fails, naming the
// file and what is wrong with it, if a file cannot be read or parsed, the
// key does not match the certificate, or files has a Cert without a Key or
// the reverse. log receives one line per reload and per unusable change;
// now is the clock the checks are spaced by (time.Now outside tests).
func New(files Files, log *slog.Logger, now func() time.Time) (*Server, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("a certificate file and a key file are both needed")
	}
	s := &Server{files: files, log: log, now: now}
	s.stamps = s.stat()
	contents, cfg, err := load(files)
	if err != nil {
		return nil, err
	}
	s.contents, s.current = contents, cfg
	s.nextCheck = now().Add(CheckInterval)
	return s, nil
}

// Config returns the tls.Config to serve with: TLS 1.2 or later, the
// current certificate, and with Files.ClientCA a client certificate
// required and verified against the current CA pool
// (tls.RequireAndVerifyClientCert). Session tickets are off, so every
// connection's client certificate is verified against the pool of the
// moment, not one a resumed session was verified against.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.config(), nil
		},
	}
}

// config returns the configuration built from the files, first reading
// them again if they changed since the last look, which was at least
// CheckInterval ago.
func (s *Server) config() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Before(s.nextCheck) {
		return s.current
	}
	s.nextCheck = now.Add(CheckInterval)
	stamps := s.stat()
	if stamps == s.stamps {
		return s.current
	}
	s.stamps = stamps
	contents, cfg, err := load(s.files)
	if err != nil {
		s.log.Warn("tls files changed but cannot be used; keeping the last good certificate", "err", err.Error())
		return s.current
	}
	if sameContents(contents, s.contents) {
		return s.current // touched, or read while being replaced: same bytes
	}
	s.contents, s.current = contents, cfg
	leaf := cfg.Certificates[0].Leaf
	s.log.Info("tls files reloaded", "cert_file", s.files.Cert, "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "client_ca_file", s.files.ClientCA)
	return s.current
}

// sameContents reports whether a and b hold the same bytes, file by file.
func sameContents(a, b [3][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// stamp identifies one state of a file cheaply: what os.Stat says of it.
// Comparable, so a Server compares all its files with ==.
type stamp struct {
	ok      bool
	dev     uint64
	ino     uint64
	size    int64
	modTime int64
}

// stat stamps the files of s (Cert, Key, ClientCA).
func (s *Server) stat() [3]stamp {
	var out [3]stamp
	for i, path := range []string{s.files.Cert, s.files.Key, s.files.ClientCA} {
		if path == "" {
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // a missing file is a state too: reading it will say so
		}
		out[i] = stamp{ok: true, size: fi.Size(), modTime: fi.ModTime().UnixNano()}
		out[i].dev, out[i].ino = fileID(fi)
	}
	return out
}

// load reads and checks files and builds the configuration they make.
func load(files Files) ([3][]byte, *tls.Config, error) {
	var contents [3][]byte
	certPEM, err := os.ReadFile(files.Cert)
	if err != nil {
		return contents, nil, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(files.Key)
	if err != nil {
		return contents, nil, fmt.Errorf("key: %w", err)
	}
	// The leaf first, on its own: tls.X509KeyPair's errors do not say
	// which of the two files is wrong.
	if _, err := parseCertificates(certPEM, 1); err != nil {
		return contents, nil, fmt.Errorf("certificate %s: %w", files.Cert, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return contents, nil, fmt.Errorf("key %s (for certificate %s): %w", files.Key, files.Cert, err)
	}
	cfg := &tls.Config{
		MinVersion:             tls.VersionTLS12,
		Certificates:           []tls.Certificate{pair},
		SessionTicketsDisabled: true,
	}
	contents[0], contents[1] = certPEM, keyPEM
	if files.ClientCA != "" {
		caPEM, err := os.ReadFile(files.ClientCA)
		if err != nil {
			return contents, nil, fmt.Errorf("client CA: %w", err)
		}
		cas, err := parseCertificates(caPEM, 0)
		if err != nil {
			return contents, nil, fmt.Errorf("client CA %s: %w", files.ClientCA, err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		for _, c := range cas {
			cfg.ClientCAs.AddCert(c)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		contents[2] = caPEM
	}
	return contents, cfg, nil
}

// parseCertificates parses the CERTIFICATE blocks of a PEM file, the first
// max of them if max > 0. A file without one is an error, and so is any
// that does not parse, or bytes that are not PEM before the first block
// (a truncated or garbled file).
func parseCertificates(data []byte, max int) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for max <= 0 || len(certs) < max {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, errors.New("empty file")
		}
		return nil, errors.New("no PEM CERTIFICATE block (or one cut short)")
	}
	return certs, nil
}
