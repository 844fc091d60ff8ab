package keycloak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// maxPage bounds how much of an HTML page ReadForm reads.
const maxPage = 1 << 20

// Form is an HTML form as a browser would submit it: its absolute action
// URL, method and the values of its named inputs (hidden inputs keep their
// values; text and password inputs start with their value attribute).
type Form struct {
	ID     string
	Action *url.URL
	Method string // upper case; "GET" when the form names none
	Values url.Values
}

// ErrNoForm is wrapped by ReadForm's error when the page has no form that
// matches.
var ErrNoForm = errors.New("no matching form on the page")

// ReadForm reads resp's body (closing it) and returns the first form for
// which match returns true (any form when match is nil), with its action
// resolved against resp's request URL. The error wraps ErrNoForm when there
// is none, and carries the page's visible error message if it has one (as
// Keycloak shows "Invalid username or password.").
func ReadForm(resp *http.Response, match func(Form) bool) (Form, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return Form{}, fmt.Errorf("read page %s: %w", resp.Request.URL.Redacted(), err)
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return Form{}, fmt.Errorf("parse page %s: %w", resp.Request.URL.Redacted(), err)
	}
	for _, f := range forms(doc, resp.Request.URL) {
		if match == nil || match(f) {
			return f, nil
		}
	}
	msg := pageError(doc)
	if msg != "" {
		return Form{}, fmt.Errorf("%w at %s (status %d): page says %q", ErrNoForm, resp.Request.URL.Redacted(), resp.StatusCode, msg)
	}
	return Form{}, fmt.Errorf("%w at %s (status %d)", ErrNoForm, resp.Request.URL.Redacted(), resp.StatusCode)
}

// Submit sends the form with client, as a browser would: form-encoded in
// the body for POST, in the query for GET.
func (f Form) Submit(ctx context.Context, client *http.Client) (*http.Response, error) {
	var req *http.Request
	var err error
	if f.Method == http.MethodGet {
		u := *f.Action
		u.RawQuery = f.Values.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, f.Method, f.Action.String(), strings.NewReader(f.Values.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("build form request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("submit form to %s: %w", f.Action.Redacted(), err)
	}
	return resp, nil
}

// IsLoginForm reports whether f is Keycloak's username/password form.
func IsLoginForm(f Form) bool {
	return f.ID == "kc-form-login" || (f.Values.Has("username") && f.Values.Has("password"))
}

// SubmitLogin fills Keycloak's login form on loginPage (the response that
// showed it; its body is consumed) with username and password and submits
// it with client, which must carry the cookie jar that fetched the page.
// It returns Keycloak's answer: with a client that does not follow
// redirects off Keycloak, a 302 to the client's redirect URI; for SAML, a
// page with the auto-POST form to the ACS (read it with ReadForm). Wrong
// credentials come back as the login form again, with the message
// "Invalid username or password.".
func SubmitLogin(ctx context.Context, client *http.Client, loginPage *http.Response, username, password string) (*http.Response, error) {
	f, err := ReadForm(loginPage, IsLoginForm)
	if err != nil {
		return nil, fmt.Errorf("find keycloak login form: %w", err)
	}
	f.Values.Set("username", username)
	f.Values.Set("password", password)
	return f.Submit(ctx, client)
}

// forms collects every <form> in doc with its named inputs.
func forms(doc *html.Node, base *url.URL) []Form {
	var out []Form
	var walk func(n *html.Node, cur *Form)
	walk = func(n *html.Node, cur *Form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f := Form{ID: attr(n, "id"), Method: strings.ToUpper(attr(n, "method")), Values: url.Values{}}
				if f.Method == "" {
					f.Method = http.MethodGet
				}
				action, err := base.Parse(attr(n, "action"))
				if err != nil {
					action = base
				}
				f.Action = action
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &f)
				}
				out = append(out, f)
				return
			case "input", "textarea", "select", "button":
				name := attr(n, "name")
				typ := strings.ToLower(attr(n, "type"))
				if cur != nil && name != "" && n.Data != "button" && typ != "submit" && typ != "button" &&
					((typ != "checkbox" && typ != "radio") || hasAttr(n, "checked")) {
					cur.Values.Add(name, attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, cur)
		}
	}
	walk(doc, nil)
	return out
}

// pageError returns the text of Keycloak's error message on a page
// (#input-error, the alert box, or the error page's #kc-error-message).
func pageError(doc *html.Node) string {
	var found string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if found != "" {
			return
		}
		if n.Type == html.ElementNode {
			id, class := attr(n, "id"), attr(n, "class")
			if id == "input-error" || id == "kc-error-message" || strings.Contains(class, "alert-error") ||
				strings.Contains(class, "kc-feedback-text") {
				if t := strings.Join(strings.Fields(text(n)), " "); t != "" {
					found = t
					return
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

func text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
		b.WriteByte(' ')
	}
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
