package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// minAdminToken is the shortest admin token accepted, in bytes: 32 bytes of
// hex (`openssl rand -hex 32` gives 64) cannot be guessed online.
const minAdminToken = 32

// maxAdminToken bounds how much of a token file is read.
const maxAdminToken = 4096

// readAdminToken reads the admin API's bearer token from path, for serve
// and for the CLI's --server mode alike. One trailing newline (LF or CRLF)
// is removed. It refuses a file that group or others may read, an empty
// token, one shorter than minAdminToken bytes, and one with spaces or
// control characters (it travels in an HTTP header). Errors are one line
// that says what to fix and never contain the token.
func readAdminToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--admin-token-file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--admin-token-file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("--admin-token-file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("--admin-token-file %s: readable by group or others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAdminToken+1))
	if err != nil {
		return "", fmt.Errorf("--admin-token-file: %w", err)
	}
	if len(data) > maxAdminToken {
		return "", fmt.Errorf("--admin-token-file %s: longer than %d bytes; write one token: (umask 077; openssl rand -hex 32 > %s)", path, maxAdminToken, path)
	}
	tok := strings.TrimSuffix(string(data), "\n")
	tok = strings.TrimSuffix(tok, "\r")
	switch {
	case tok == "":
		return "", fmt.Errorf("--admin-token-file %s: the file is empty; write a random token of at least %d bytes: (umask 077; openssl rand -hex 32 > %s)", path, minAdminToken, path)
	case strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
		return "", fmt.Errorf("--admin-token-file %s: the token must be printable ASCII without spaces and on one line: (umask 077; openssl rand -hex 32 > %s)", path, path)
	case len(tok) < minAdminToken:
		return "", fmt.Errorf("--admin-token-file %s: the token is %d bytes; use at least %d: (umask 077; openssl rand -hex 32 > %s)", path, len(tok), minAdminToken, path)
	}
	return tok, nil
}
