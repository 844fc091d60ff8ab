package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/tenants"
)

// errLoopbackWithServer refuses --allow-loopback-http-idp with --server: the
// server validates with its own setting.
var errLoopbackWithServer = errors.New("--allow-loopback-http-idp: with --server the server's own --allow-loopback-http-idp setting applies; drop the flag")

// maxAdminResponse bounds how much of an admin API answer is read.
const maxAdminResponse = 64 << 20

// remoteAdmin sends the tenants and users commands to a running server's
// admin API (--server URL). The token goes only to that URL: over https,
// or over http to a loopback address (checked again on every connection),
// never through a proxy in the clear, never along a redirect.
type remoteAdmin struct {
	base   *url.URL
	token  string
	client *http.Client
}

var _ admin = (*remoteAdmin)(nil)

// newRemoteAdmin checks --server and reads --admin-token-file.
func newRemoteAdmin(rawURL, tokenFile string) (*remoteAdmin, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("--server %q: want the URL of the server's --admin-addr, like https://tenantgate.internal:9003", rawURL)
	}
	if u.User != nil {
		return nil, errors.New("--server: the URL must not hold credentials; the token goes in --admin-token-file")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("--server %s: the URL must not have a query or fragment", u.Redacted())
	}
	plain := u.Scheme == "http"
	if plain && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--server %s: http:// only to a loopback address (127.0.0.1, [::1], localhost); use https:// so the token and passwords are not sent in the clear", u)
	}
	token, err := readAdminToken(tokenFile)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if plain {
		// A name like localhost is resolved when dialling: refuse to
		// connect anywhere but loopback, and never hand the clear-text
		// request to a proxy.
		tr.Proxy = nil
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return fmt.Errorf("--server %s resolves to %s, not a loopback address; use https://", u, address)
			}
			return nil
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return &remoteAdmin{
		base:  u,
		token: token,
		client: &http.Client{
			Transport:     tr,
			Timeout:       2 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// loopbackHost reports whether host is a loopback address or a localhost
// name (RFC 6761 §6.3).
func loopbackHost(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Zone() == "" && a.Unmap().IsLoopback()
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// Close releases idle connections.
func (c *remoteAdmin) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// do sends one request to path (escaped, below adminAPIPrefix) and returns the body of a 2xx answer. Any other
// answer becomes the error the server gave, which is the line the --db mode
// prints for the same failure.
func (c *remoteAdmin) do(ctx context.Context, method, path string, query url.Values, body []byte, contentType string) ([]byte, error) {
	target := c.base.String() + adminAPIPrefix + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("admin API request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse+1))
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: read answer: %w", c.base, err)
	}
	if len(data) > maxAdminResponse {
		return nil, fmt.Errorf("admin API at %s: answer larger than %d MiB", c.base, maxAdminResponse>>20)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, nil
	}
	return nil, c.answerError(resp, data)
}

// answerError is the error of an admin API answer that is not 2xx: the
// server's message, which is the line the --db mode prints for the same
// failure.
func (c *remoteAdmin) answerError(resp *http.Response, data []byte) error {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(data, &e) != nil || e.Error == "":
		return fmt.Errorf("admin API at %s answered %s, not as the admin API does (is --server the server's --admin-addr?)", c.base, resp.Status)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("admin API at %s refused the token in --admin-token-file (401 unauthenticated): use the file serve was started with", c.base)
	case e.Message != "":
		return errors.New(printable(e.Message))
	default:
		return fmt.Errorf("admin API at %s: %s", c.base, printable(e.Error))
	}
}

// backup copies the server's store (GET /admin/v1/backup) to w. A copy
// shorter than the server announced is an error; the caller still checks
// that it is a database.
func (c *remoteAdmin) backup(ctx context.Context, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+adminAPIPrefix+"/backup", nil)
	if err != nil {
		return fmt.Errorf("admin API request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	// A large store takes longer than the client's timeout for JSON
	// answers; the transport's dial and handshake timeouts still apply.
	client := *c.client
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAdminJSON))
		return c.answerError(resp, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != backupContentType {
		return fmt.Errorf("admin API at %s answered %s, not a backup (is --server the server's --admin-addr?)", c.base, ct)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("admin API at %s: backup cut off after %d bytes: %w", c.base, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("admin API at %s: backup cut off after %d of %d bytes", c.base, n, resp.ContentLength)
	}
	return nil
}

// unwrapURLError drops url.Error's "Get "URL":" prefix, which repeats the
// server address the caller already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// printable drops control characters from a server's message, so that what
// a server says cannot drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

func (c *remoteAdmin) getJSON(ctx context.Context, path string, out any) error {
	data, err := c.do(ctx, http.MethodGet, path, nil, nil, "")
	if err != nil {
		return err
	}
	return decodeAnswer(data, out)
}

func decodeAnswer(data []byte, out any) error {
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	return nil
}

func (c *remoteAdmin) applyTenants(ctx context.Context, file []byte, allowLoopback bool) (applyReport, error) {
	if allowLoopback {
		return applyReport{}, errLoopbackWithServer
	}
	data, err := c.do(ctx, http.MethodPost, "/tenants", nil, file, "application/yaml")
	if err != nil {
		return applyReport{}, err
	}
	var r applyReport
	return r, decodeAnswer(data, &r)
}

func (c *remoteAdmin) listTenants(ctx context.Context) ([]tenantRow, error) {
	var rows []tenantRow
	err := c.getJSON(ctx, "/tenants", &rows)
	return rows, err
}

// tenantPath is the path of a tenant. An id that is not a valid tenant id
// names no tenant (Validate admits no other), and is answered here as the
// --db mode answers it, so that no dot segment or escape reaches the URL.
func tenantPath(id string) (string, error) {
	if !tenants.ValidTenantID(id) {
		return "", refuse(http.StatusNotFound, "tenant %q not found", id)
	}
	return "/tenants/" + id, nil
}

func (c *remoteAdmin) getTenant(ctx context.Context, id, format string) ([]byte, error) {
	p, err := tenantPath(id)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, http.MethodGet, p, url.Values{"format": {format}}, nil, "")
}

func (c *remoteAdmin) deleteTenant(ctx context.Context, id string) error {
	p, err := tenantPath(id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodDelete, p, nil, nil, "")
	return err
}

func (c *remoteAdmin) addUser(ctx context.Context, req addUserRequest) (addUserResult, error) {
	body := addUserBody{Email: req.Email, Roles: nonNil(req.Roles)}
	if req.PasswordInput != nil {
		input, err := req.PasswordInput()
		if err != nil {
			return addUserResult{}, err
		}
		// JSON would turn invalid UTF-8 into U+FFFD: a different password.
		if !utf8.Valid(input) {
			return addUserResult{}, password.ErrNotUTF8
		}
		s := string(input)
		body.Password = &s
	}
	b, err := json.Marshal(body)
	if err != nil {
		return addUserResult{}, fmt.Errorf("admin API request: %w", err)
	}
	p, err := tenantPath(req.TenantID)
	if err != nil {
		return addUserResult{}, err
	}
	data, err := c.do(ctx, http.MethodPost, p+"/users", nil, b, "application/json")
	if err != nil {
		return addUserResult{}, err
	}
	var r addUserResult
	return r, decodeAnswer(data, &r)
}

func (c *remoteAdmin) listUsers(ctx context.Context, tenantID string) ([]userRow, error) {
	p, err := tenantPath(tenantID)
	if err != nil {
		return nil, err
	}
	var rows []userRow
	err = c.getJSON(ctx, p+"/users", &rows)
	return rows, err
}

func (c *remoteAdmin) deleteUser(ctx context.Context, tenantID, email string) error {
	p, err := tenantPath(tenantID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodDelete, p+"/users/"+url.PathEscape(email), nil, nil, "")
	return err
}

func (c *remoteAdmin) resetMFA(ctx context.Context, tenantID, email string) error {
	p, err := tenantPath(tenantID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, p+"/users/"+url.PathEscape(email)+"/reset-mfa", nil, nil, "")
	return err
}

func (c *remoteAdmin) auditEvents(ctx context.Context, q tenants.AuditQuery) ([]tenants.AuditEvent, error) {
	p, err := tenantPath(q.Tenant)
	if err != nil {
		return nil, err
	}
	query := url.Values{}
	if !q.Since.IsZero() {
		query.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Event != "" {
		query.Set("event", q.Event)
	}
	data, err := c.do(ctx, http.MethodGet, p+"/audit", query, nil, "")
	if err != nil {
		return nil, err
	}
	var evs []tenants.AuditEvent
	return evs, decodeAnswer(data, &evs)
}

func (c *remoteAdmin) verifyAudit(ctx context.Context, tenantID string) (tenants.AuditVerdict, error) {
	p, err := tenantPath(tenantID)
	if err != nil {
		return tenants.AuditVerdict{}, err
	}
	var v tenants.AuditVerdict
	err = c.getJSON(ctx, p+"/audit/verify", &v)
	return v, err
}
