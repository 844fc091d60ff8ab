package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tenantgate/tenantgate/tenants"
)

// adminAPIPrefix is where the admin API lives on --admin-addr. A later
// incompatible version gets a new prefix; this one keeps answering.
const adminAPIPrefix = "/admin/v1"

// maxAdminJSON bounds a JSON request body (users add).
const maxAdminJSON = 64 << 10

// adminAPI serves the admin API: the tenants and users commands over HTTP,
// for `tenantgate tenants|users … --server URL` and for scripts. Every
// request must carry the token of serve's --admin-token-file as
// `Authorization: Bearer <token>`. Each operation is the localAdmin the CLI's
// --db mode runs, on the server's store, with the server's
// --allow-loopback-http-idp. Neither the token nor any request body is
// logged; no response holds a secret, password hash or key.
type adminAPI struct {
	// tokenHash is the SHA-256 of the token: comparing hashes in constant
	// time leaks neither the token nor its length.
	tokenHash     [sha256.Size]byte
	ops           *localAdmin
	allowLoopback bool
	log           *slog.Logger
}

func newAdminAPI(token string, ops *localAdmin, allowLoopback bool, log *slog.Logger) http.Handler {
	a := &adminAPI{tokenHash: sha256.Sum256([]byte(token)), ops: ops, allowLoopback: allowLoopback, log: log}
	mux := http.NewServeMux()
	p := adminAPIPrefix
	routes := []struct {
		path    string
		methods map[string]http.HandlerFunc
	}{
		{"/tenants", map[string]http.HandlerFunc{"POST": a.applyTenants, "GET": a.listTenants}},
		{"/tenants/{id}", map[string]http.HandlerFunc{"GET": a.getTenant, "DELETE": a.deleteTenant}},
		{"/tenants/{id}/users", map[string]http.HandlerFunc{"POST": a.addUser, "GET": a.listUsers}},
		{"/tenants/{id}/users/{email}", map[string]http.HandlerFunc{"DELETE": a.deleteUser}},
		{"/tenants/{id}/users/{email}/reset-mfa", map[string]http.HandlerFunc{"POST": a.resetMFA}},
		{"/tenants/{id}/audit", map[string]http.HandlerFunc{"GET": a.listAudit}},
		{"/tenants/{id}/audit/verify", map[string]http.HandlerFunc{"GET": a.verifyAudit}},
		{"/tenants/{id}/invitations", map[string]http.HandlerFunc{"POST": a.invite}},
		{"/backup", map[string]http.HandlerFunc{"GET": a.backup}},
		{"/tenants/{id}/keys/rotate", map[string]http.HandlerFunc{"POST": a.rotateKeys}},
		{"/keys/rotate", map[string]http.HandlerFunc{"POST": a.rotateKeys}},
		{"/master-key/rotate", map[string]http.HandlerFunc{"POST": a.rotateMasterKey}},
	}
	for _, rt := range routes {
		var allow []string
		for method, h := range rt.methods {
			mux.HandleFunc(method+" "+p+rt.path, h)
			allow = append(allow, method)
		}
		slices.Sort(allow)
		allowed := strings.Join(allow, ", ")
		mux.HandleFunc(p+rt.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowed)
			writeAdminError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; use "+allowed)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAdminError(w, http.StatusNotFound, "not_found", "no such admin API endpoint (see README.md, Admin API)")
	})
	return a.authenticate(mux)
}

// adminAPIOff answers the admin API's paths when serve runs without
// --admin-token-file.
func adminAPIOff(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeAdminError(w, http.StatusNotFound, "not_found", "the admin API is off: start serve with --admin-token-file")
}

// authenticate lets a request through only with the right bearer token,
// and logs one line per request: method, route, tenant, status, never the
// token, the body or the email in the path.
func (a *adminAPI) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !a.authorized(r) {
			a.log.WarnContext(r.Context(), "admin request refused", "method", r.Method, "remote", r.RemoteAddr, "reason", "missing or wrong bearer token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="tenantgate-admin"`)
			writeAdminError(w, http.StatusUnauthorized, "unauthenticated", "")
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		a.log.InfoContext(r.Context(), "admin request", "method", r.Method, "route", r.Pattern, "tenant", r.PathValue("id"), "status", sw.status, "remote", r.RemoteAddr)
	})
}

func (a *adminAPI) authorized(r *http.Request) bool {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) == 1
}

// statusWriter remembers the status a handler wrote, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// writeAdminError writes {"error": code, "message": message}; message is
// the one line the CLI prints for the same failure (omitted when empty).
func writeAdminError(w http.ResponseWriter, status int, code, message string) {
	body := struct {
		Error   string `json:"error"`
		Message string `json:"message,omitempty"`
	}{code, message}
	writeAdminJSON(w, status, body)
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// fail answers an operation's error: a requestError with its status, store
// sentinels with theirs, anything else 500 (logged).
func (a *adminAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var re *requestError
	switch {
	case errors.As(err, &re):
		status = re.status
	case errors.Is(err, tenants.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, tenants.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, tenants.ErrSecretRequired), errors.Is(err, tenants.ErrPasswordRequired), errors.Is(err, tenants.ErrChangeRefused):
		status = http.StatusUnprocessableEntity
	}
	code := map[int]string{
		http.StatusBadRequest:            "bad_request",
		http.StatusNotFound:              "not_found",
		http.StatusConflict:              "conflict",
		http.StatusRequestEntityTooLarge: "too_large",
		http.StatusUnprocessableEntity:   "invalid",
		http.StatusServiceUnavailable:    "unavailable",
	}[status]
	if code == "" {
		status, code = http.StatusInternalServerError, "internal"
		a.log.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "route", r.Pattern, "tenant", r.PathValue("id"), "err", err)
	}
	writeAdminError(w, status, code, oneLine(err))
}

// readBody reads a request body of at most limit bytes; what is too large
// is a requestError naming what is.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, refuse(http.StatusRequestEntityTooLarge, "%s is larger than %s", what, sizeString(limit))
	}
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "read %s: %v", what, err)
	}
	return data, nil
}

func sizeString(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// applyTenants: POST /admin/v1/tenants, the body a tenant file (YAML or
// JSON); 200 with an applyReport.
func (a *adminAPI) applyTenants(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r, tenants.MaxFileSize, "tenant file")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	report, err := a.ops.applyTenants(r.Context(), data, a.allowLoopback)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ids := make([]string, len(report.Tenants))
	for i, t := range report.Tenants {
		ids[i] = t.ID
	}
	a.log.InfoContext(r.Context(), "tenants applied", "tenants", strings.Join(ids, ","), "remote", r.RemoteAddr)
	writeAdminJSON(w, http.StatusOK, report)
}

// listTenants: GET /admin/v1/tenants; 200 with the rows of `tenants list -o json`.
func (a *adminAPI) listTenants(w http.ResponseWriter, r *http.Request) {
	rows, err := a.ops.listTenants(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusOK, rows)
}

// getTenant: GET /admin/v1/tenants/{id}[?format=json|yaml]; 200 with a
// tenant file holding the one tenant, exactly what `tenants get -o FORMAT`
// prints (no secrets).
func (a *adminAPI) getTenant(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	data, err := a.ops.getTenant(r.Context(), r.PathValue("id"), format)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/"+format)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(data)
}

// deleteTenant: DELETE /admin/v1/tenants/{id}; 200 {"id": ID, "deleted": true}.
func (a *adminAPI) deleteTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.ops.deleteTenant(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "tenant deleted", "tenant", id, "remote", r.RemoteAddr)
	writeAdminJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
}

// addUserBody is the JSON body of POST /admin/v1/tenants/{id}/users.
// Password is what --password-stdin would read (one trailing newline is
// removed); it is hashed here and used only if the email is new.
type addUserBody struct {
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
	Password *string  `json:"password"`
}

// addUser: POST /admin/v1/tenants/{id}/users; 200 with an addUserResult.
func (a *adminAPI) addUser(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r, maxAdminJSON, "request body")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body addUserBody
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || dec.More() {
		// The decoder's message may quote the body, which holds a password.
		a.fail(w, r, refuse(http.StatusBadRequest, `request body: want one JSON object {"email": …, "roles": […], "password": …} and nothing else`))
		return
	}
	req := addUserRequest{TenantID: r.PathValue("id"), Email: body.Email, Roles: body.Roles}
	if body.Password != nil {
		req.PasswordInput = func() ([]byte, error) { return []byte(*body.Password), nil }
	}
	res, err := a.ops.addUser(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "user added", "tenant", res.Tenant, "created", res.Created, "remote", r.RemoteAddr)
	writeAdminJSON(w, http.StatusOK, res)
}

// listUsers: GET /admin/v1/tenants/{id}/users; 200 with the rows of
// `users list -o json`.
func (a *adminAPI) listUsers(w http.ResponseWriter, r *http.Request) {
	rows, err := a.ops.listUsers(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusOK, rows)
}

// deleteUser: DELETE /admin/v1/tenants/{id}/users/{email}; removes the
// membership and revokes the user's sessions in the tenant; 200
// {"tenant": ID, "email": EMAIL, "removed": true}.
func (a *adminAPI) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, email := r.PathValue("id"), r.PathValue("email")
	if err := a.ops.deleteUser(r.Context(), id, email); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "user removed", "tenant", id, "remote", r.RemoteAddr)
	addr, _ := parseEmail(email)
	writeAdminJSON(w, http.StatusOK, map[string]any{"tenant": id, "email": addr, "removed": true})
}

// resetMFA: POST /admin/v1/tenants/{id}/users/{email}/reset-mfa; removes
// the member's second factors in the tenant; 200 {"tenant": ID, "email":
// EMAIL, "reset": true}.
func (a *adminAPI) resetMFA(w http.ResponseWriter, r *http.Request) {
	id, email := r.PathValue("id"), r.PathValue("email")
	if err := a.ops.resetMFA(r.Context(), id, email); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "second factors reset", "tenant", id, "remote", r.RemoteAddr)
	addr, _ := parseEmail(email)
	writeAdminJSON(w, http.StatusOK, map[string]any{"tenant": id, "email": addr, "reset": true})
}

// backupContentType is the media type of GET /admin/v1/backup: the bytes
// of a bbolt file.
const backupContentType = "application/octet-stream"

// backup: GET /admin/v1/backup; 200 with a consistent copy of the store as
// the bytes of a bbolt file that `serve --db` opens (streamBackup: one
// bbolt read transaction, or one etcd revision), with its Content-Length.
// Secrets in it stay sealed under the master key. A failure once the copy
// has begun aborts the connection, so the client never takes a cut-off
// copy for a whole one.
func (a *adminAPI) backup(w http.ResponseWriter, r *http.Request) {
	st, err := a.ops.store()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var started bool
	err = streamBackup(r.Context(), st, func(size int64) (io.Writer, error) {
		h := w.Header()
		h.Set("Content-Type", backupContentType)
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="tenantgate-backup.db"`)
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		started = true
		return w, nil
	})
	switch {
	case err == nil:
		a.log.InfoContext(r.Context(), "backup sent", "remote", r.RemoteAddr)
	case !started:
		a.fail(w, r, err)
	default:
		a.log.ErrorContext(r.Context(), "backup cut off", "remote", r.RemoteAddr, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// refreshAfterWrite is the localAdmin.written hook of serve: publish the new
// snapshot before the admin API answers. It finishes even if the client
// goes away, and on failure logs (the store's watch retries).
func refreshAfterWrite(cur *tenants.Current, st tenants.Snapshotter, log *slog.Logger) func(context.Context) {
	return func(ctx context.Context) {
		if err := cur.Refresh(context.WithoutCancel(ctx), st); err != nil {
			log.Error("refresh tenant snapshot after an admin write", "err", err)
		}
	}
}
