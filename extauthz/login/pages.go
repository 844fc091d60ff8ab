package login

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

//go:embed templates/pages.html templates/tenancy.html templates/account.html templates/sessions.html templates/mfa.html templates/passkey.html templates/style.css
var templateFS embed.FS

// baseCSS is the stylesheet every page inlines after its palette. It holds
// no colour of its own: every colour is a custom property (palette.css).
var baseCSS = mustRead("templates/style.css")

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pages holds one parsed template set per page body. Parsed once, never
// modified.
var pages = parsePages()

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{"referrerPolicy": func() string { return referrerPolicy }}
	base := template.Must(template.New("pages.html").Funcs(funcs).ParseFS(templateFS, "templates/pages.html", "templates/tenancy.html", "templates/account.html", "templates/sessions.html", "templates/mfa.html", "templates/passkey.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "discover", "logout", "message", "apex", "chooser", "switch", "forgot", "reset", "invite", "account", "mfa", "recovery-codes"} {
		t := template.Must(base.Clone())
		template.Must(t.New("body").Parse(`{{template "` + name + `-body" .}}`))
		out[name] = t
	}
	return out
}

// referrerPolicy is the Referrer-Policy of every response under /_auth/,
// pages, redirects and errors alike: ServeHTTP sets it before anything else,
// and each page repeats it in a <meta> element.
//
// same-origin keeps the Origin header on the pages' own form POSTs and sends
// no Referer, not even our origin, to any other origin. no-referrer, the
// policy before it, made browsers send "Origin: null" with those POSTs
// (Fetch, "serializing a request origin"); over plain http, where browsers
// send no Sec-Fetch-Site, http.CrossOriginProtection then had only that null
// to judge by and refused every sign-in as cross-origin (security catalogue
// item 51). strict-origin-when-cross-origin would keep the Origin too, but
// would also tell every other origin which tenant host a person came from:
// an identity provider after an SSO button, the tenant host the apex sends
// someone to. same-origin reveals nothing
// outside the origin, where these pages' URLs carry rd, login hints and, at
// /_auth/callback, one-time codes. Within the origin the full URL may go
// along: to tenantgate itself, and to the tenant's app behind the same host,
// which already learns rd and the person's email. A redirect passes on the
// referrer of the page that started the navigation, never its own URL, so
// a callback answered by a redirect hands its code to nobody; the failure
// page a callback can show links only back to the sign-in page. The CSRF
// field (checkCSRF) stays the guard; the origin check only refuses early
// what a browser marks as foreign.
const referrerPolicy = "same-origin"

// contentSecurityPolicy is every page's policy: nothing may load or run but
// the page's one inline stylesheet, allowed by its hash (styleHash, a CSP
// hash source such as 'sha256-…'); images only from the tenant's logo
// origin (logoOrigin, a host source from tenants.LogoOrigin; without a logo
// no image at all); forms posting to the page's own origin plus
// extraFormTargets (discovery's redirect to a tenant host and SSO start
// forms: browsers apply form-action to the redirect that follows a POST);
// no framing and no <base>.
func contentSecurityPolicy(styleHash, logoOrigin, extraFormTargets string) string {
	csp := "default-src 'none'; style-src " + styleHash
	if logoOrigin != "" {
		csp += "; img-src " + logoOrigin
	}
	csp += "; form-action 'self'"
	if extraFormTargets != "" {
		csp += " " + extraFormTargets
	}
	return csp + "; frame-ancestors 'none'; base-uri 'none'"
}

// look is a page's branding as rendered: its stylesheet and that
// stylesheet's CSP hash, and the logo with its origin.
type look struct {
	style      string
	styleHash  string
	logoURL    string
	logoOrigin string
}

// lookFor turns a tenant's branding (the zero Branding on the apex host)
// into what a page shows. A logo or accent that does not pass the tenant
// file's own checks (a record written by hand, say) is dropped, never
// rendered.
func lookFor(b tenants.Branding) look {
	l := look{style: paletteFor(b.AccentColor).css() + baseCSS}
	sum := sha256.Sum256([]byte(l.style))
	l.styleHash = "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if origin, err := tenants.LogoOrigin(b.LogoURL); err == nil {
		l.logoURL, l.logoOrigin = b.LogoURL, origin
	}
	return l
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
	// Message, Alert, Causes, Link, LinkText: the message page; Causes
	// lists what likely went wrong, when that is known.
	Message  string
	Alert    bool
	Causes   []string
	Link     string
	LinkText string
	// Email, Tenants, LogoutAction: the apex's chooser of the signed-in
	// person's organisations (global.go); Email and Hidden: the apex's
	// confirmation of a switch (switch.go).
	Email        string
	Tenants      []tenantChoice
	LogoutAction string
	Hidden       []hiddenField
	// ForgotLink, on the sign-in page, leads to password reset (set when
	// mail is configured); Acct is the account pages' own (account.go).
	ForgotLink string
	Acct       accountView
	// MFA is the second step's and the account page's (mfa.go).
	MFA mfaView
	// formTargets extends the CSP's form-action; not rendered.
	formTargets string
	// Passkeys is the account page's passkey section (passkey.go); its
	// script is allowed by hash in the CSP.
	Passkeys *passkeyView

	// Set by render from the tenant's branding: the inline stylesheet
	// (palette and base CSS, allowed by its hash in the CSP) and the logo.
	Style   template.CSS
	LogoURL string
	// FocusSSO is the Index of the SSO button that takes autofocus on a
	// sign-in page without a password form (the first available one), or
	// -1.
	FocusSSO int
}

// render writes a page with the security headers every page carries; only
// write calls it.
func (h *Handler) render(q *request, status int, name string, p page) {
	var brand tenants.Branding
	if t := q.tenant(); t != nil {
		brand = t.Branding
	}
	l := lookFor(brand)
	p.Style, p.LogoURL = template.CSS(l.style), l.logoURL
	p.FocusSSO = -1
	if !p.Password {
		for _, c := range p.SSO {
			if c.Available {
				p.FocusSSO = c.Index
				break
			}
		}
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log().ErrorContext(q.r.Context(), "render sign-in page", "page", name, "err", err)
		writeJSONError(q.w, http.StatusInternalServerError, "internal")
		return
	}
	hd := q.w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", withPageScripts(contentSecurityPolicy(l.styleHash, l.logoOrigin, p.formTargets), p))
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		q.w.Write(buf.Bytes())
	}
}

// message is a page holding one sentence and a link back to the sign-in
// page.
func (h *Handler) message(q *request, status int, title, msg string, alert bool) *answer {
	return htmlPage(status, "message", h.messagePage(q, title, msg, alert))
}

// messagePage is the page message renders.
func (h *Handler) messagePage(q *request, title, msg string, alert bool) page {
	p := page{Title: title, Message: msg, Alert: alert, Link: q.res.Prefix + signin.PathLogin, LinkText: "Back to sign-in"}
	if t := q.tenant(); t != nil {
		p.TenantName = displayName(t.Name, t.ID)
	}
	return p
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
