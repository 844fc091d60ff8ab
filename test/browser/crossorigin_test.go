package browser

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// trustedByInitech is the one origin in initech's trustedOrigins: acme's
// pages may write to initech with the person's initech session.
const trustedByInitech = "https://acme.app.test"

// transferPage is a page every tenant's app serves under /public/ (an
// anonymous rule): a form that POSTs to initech's app. Served on hooli it is
// a sibling tenant's page — uploaded content, or script injected into one
// tenant's area — trying to act as the person signed in to initech. It has
// no script of its own; the test submits it.
const transferPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>transfer</title></head>
<body><form id="transfer" method="post" action="https://initech.app.test/api/transfer">
<input name="amount" value="100"><button>Send</button></form></body></html>
`

// appPages are the pages the echo upstream serves as HTML.
var appPages = map[string]string{"/public/transfer.html": transferPage}

// crossOriginGuard proves the cross-origin request guard in Chromium
// (CONTRACT.md, Check: cross_origin). Every tenant is the same site to the
// browser, so the person's SameSite=Lax initech cookie rides along on a form
// POST and on a credentialed fetch from hooli's page; tenantgate refuses
// both and the app never sees them. The same form on initech's own page, and
// on acme's page (in initech's trustedOrigins), goes through.
func crossOriginGuard(t *testing.T, p *tab, s *harness) {
	signInWithPassword(p, origin("initech")+"/reports", mia)

	// hooli's page: a credentialed fetch (the response is opaque to the
	// page, so what counts is what the app received) and a form.
	p.open(origin("hooli") + "/public/transfer.html")
	fetched := value(p, "fetch from hooli's page", chromedp.Evaluate[string](
		`fetch("https://initech.app.test/api/transfer-fetch", {method: "POST", credentials: "include", mode: "no-cors",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "amount=100"}).then(() => "sent", e => "failed: " + e)`,
		chromedp.EvalAwaitPromise))
	if fetched != "sent" {
		t.Fatalf("the fetch was not sent: %s", fetched)
	}
	p.steps("submit hooli's form", chromedp.Evaluate[chromedp.Void](`document.getElementById("transfer").submit()`),
		chromedp.WaitReady(chromedp.CSS("body")))
	p.waitFor("initech's answer to hooli's form", actionTimeout, atPath(origin("initech"), "/api/transfer"))
	p.shot("sibling-form-refused")
	if got := p.bodyText(); !strings.Contains(got, `"cross_origin"`) {
		t.Errorf("hooli's form POST to initech: page shows %q, want the cross_origin refusal", got)
	}
	for _, r := range s.Upstream.Requests() {
		if strings.HasPrefix(r.Path, "/api/transfer") {
			t.Fatalf("the app received %s %s from a sibling tenant's page (x-user-email %q)", r.Method, r.Path, header(r, "x-user-email"))
		}
	}

	// The same form on initech's own page, then on the trusted acme's.
	for _, from := range []string{origin("initech"), trustedByInitech} {
		p.open(from + "/public/transfer.html")
		p.click("send the form from "+from, "#transfer button")
		p.waitFor("initech's app after the form from "+from, actionTimeout, atPath(origin("initech"), "/api/transfer"))
		got := p.upstream()
		if got.Method != "POST" || header(got, "x-user-email") != mia.Email || header(got, "x-tenant-id") != "initech" {
			t.Errorf("form from %s: the app saw %s as %q in %q, want mia's POST in initech", from, got.Method,
				header(got, "x-user-email"), header(got, "x-tenant-id"))
		}
	}
	p.shot("same-origin-form-passes")
}
