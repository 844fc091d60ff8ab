package login

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

//go:embed templates/pages.html
var templateFS embed.FS

// pages holds one parsed template set per page body. Parsed once, never
// modified.
var pages = parsePages()

func parsePages() map[string]*template.Template {
	base := template.Must(template.ParseFS(templateFS, "templates/pages.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "discover", "logout", "message"} {
		t := template.Must(base.Clone())
		template.Must(t.New("body").Parse(`{{template "` + name + `-body" .}}`))
		out[name] = t
	}
	return out
}

// contentSecurityPolicy allows nothing but the page's inline styles, images
// from itself, and forms posting to itself (plus extra form targets, for
// discovery's redirect to a tenant host: browsers apply form-action to the
// redirect that follows a POST).
func contentSecurityPolicy(extraFormTargets string) string {
	fa := "'self'"
	if extraFormTargets != "" {
		fa += " " + extraFormTargets
	}
	return "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action " + fa +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// page is what every template sees.
type page struct {
	Title      string
	TenantName string
	// Action is the form's target path.
	Action string
	CSRF   string
	// RD is the (already validated) return path.
	RD string
	// Password shows the password form; SSO lists the SSO buttons, each a
	// form posting to StartAction.
	Password    bool
	SSO         []ssoChoice
	StartAction string
	LoginHint   string
	Error       string
	Notice      string
	// Message, Alert, Link, LinkText: the message page.
	Message  string
	Alert    bool
	Link     string
	LinkText string
	// formTargets extends the CSP's form-action; not rendered.
	formTargets string
}

// render writes a page with the security headers every page carries.
func (h *Handler) render(q *request, status int, name string, p page) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log().Error("render sign-in page", "page", name, "err", err)
		writeJSONError(q.w, http.StatusInternalServerError, "internal")
		return
	}
	hd := q.w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", contentSecurityPolicy(p.formTargets))
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		q.w.Write(buf.Bytes())
	}
}

// message renders a page holding one sentence and a link back to the sign-in
// page.
func (h *Handler) message(q *request, status int, title, msg string, alert bool) {
	p := page{Title: title, Message: msg, Alert: alert, Link: q.res.Prefix + pathLogin, LinkText: "Back to sign-in"}
	if t := q.tenant(); t != nil {
		p.TenantName = displayName(t.Name, t.ID)
	}
	h.render(q, status, "message", p)
}

func displayName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// writeJSONError answers a machine-readable error whose body names only the
// code, never anything from the request.
func writeJSONError(w http.ResponseWriter, status int, code string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(`{"error":"` + code + `"}` + "\n"))
}
