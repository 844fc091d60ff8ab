package account

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strings"
	texttemplate "text/template"

	"github.com/tenantgate/tenantgate/extauthz/mail"
	"github.com/tenantgate/tenantgate/tenants"
)

// Brand is how a tenant's messages look: its display name, accent colour
// and logo (tenants.Branding, checked again here: a value that does not
// pass the tenant file's checks is dropped, never rendered).
type Brand struct {
	Name   string
	Accent string
	// OnAccent is the text colour of the button: black or white, whichever
	// reads better on Accent.
	OnAccent string
	LogoURL  string
}

// BrandOf is the Brand of a tenant.
func BrandOf(t *tenants.Tenant) Brand {
	b := Brand{Name: t.Name, Accent: "#1f6feb", OnAccent: "#ffffff"}
	if b.Name == "" {
		b.Name = t.ID
	}
	if c, err := tenants.ParseAccentColor(t.Branding.AccentColor); err == nil && t.Branding.AccentColor != "" {
		b.Accent = fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
		if light(c) {
			b.OnAccent = "#000000"
		}
	}
	if _, err := tenants.LogoOrigin(t.Branding.LogoURL); err == nil {
		b.LogoURL = t.Branding.LogoURL
	}
	return b
}

// light reports whether black text reads better than white on c (WCAG
// relative luminance against the crossover of the two contrast ratios).
func light(c color.RGBA) bool {
	lin := func(v uint8) float64 {
		f := float64(v) / 255
		if f <= 0.04045 {
			return f / 12.92
		}
		return pow24((f + 0.055) / 1.055)
	}
	l := 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
	return l > 0.179
}

// pow24 is x^2.4.
func pow24(x float64) float64 { return math.Pow(x, 2.4) }

// content is what every message's templates see.
type content struct {
	Brand
	Heading, Intro, Button, After string
	Link                          string
}

var htmlMessage = template.Must(template.New("m").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Heading}}</title></head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1b1f24">
<div style="max-width:480px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px">
{{with .LogoURL}}<img src="{{.}}" alt="" height="40" style="display:block;margin-bottom:16px">{{end}}
<p style="margin:0 0 8px;color:#57606a">{{.Name}}</p>
<h1 style="margin:0 0 16px;font-size:20px">{{.Heading}}</h1>
<p style="line-height:1.5">{{.Intro}}</p>
{{if .Link}}<p style="margin:24px 0"><a href="{{.Link}}" style="display:inline-block;padding:10px 18px;border-radius:6px;background:{{.Accent}};color:{{.OnAccent}};text-decoration:none;font-weight:600">{{.Button}}</a></p>
<p style="line-height:1.5;font-size:13px;color:#57606a">Or paste this address into your browser:<br><span style="word-break:break-all">{{.Link}}</span></p>{{end}}
<p style="line-height:1.5;font-size:13px;color:#57606a">{{.After}}</p>
</div></body></html>
`))

var textMessage = texttemplate.Must(texttemplate.New("m").Parse(`{{.Name}}

{{.Heading}}

{{.Intro}}
{{if .Link}}
{{.Button}}: {{.Link}}
{{end}}
{{.After}}
`))

func compose(to, subject string, c content) (mail.Message, error) {
	var h, t bytes.Buffer
	if err := htmlMessage.Execute(&h, c); err != nil {
		return mail.Message{}, fmt.Errorf("compose message: %w", err)
	}
	if err := textMessage.Execute(&t, c); err != nil {
		return mail.Message{}, fmt.Errorf("compose message: %w", err)
	}
	return mail.Message{To: to, Subject: subject, Text: t.String(), HTML: h.String()}, nil
}

// ResetMessage is the email carrying a password reset link.
func ResetMessage(b Brand, to, link string) (mail.Message, error) {
	return compose(to, "Reset your password for "+oneLine(b.Name), content{
		Brand: b, Heading: "Reset your password", Button: "Choose a new password", Link: link,
		Intro: "Someone, hopefully you, asked to reset the password of your account at " + b.Name + ". The link works once, for 30 minutes.",
		After: "If you did not ask for this, ignore this email: your password stays as it is.",
	})
}

// InviteMessage is the email carrying an invitation.
func InviteMessage(b Brand, to, link string, days int) (mail.Message, error) {
	return compose(to, "You are invited to "+oneLine(b.Name), content{
		Brand: b, Heading: "You are invited to " + b.Name, Button: "Accept the invitation", Link: link,
		Intro: fmt.Sprintf("You have been invited to join %s. The link works once, for %d days.", b.Name, days),
		After: "If you did not expect this, ignore this email.",
	})
}

// PasswordChangedMessage tells the account holder their password changed.
func PasswordChangedMessage(b Brand, to string) (mail.Message, error) {
	return compose(to, "Your password for "+oneLine(b.Name)+" was changed", content{
		Brand: b, Heading: "Your password was changed",
		Intro: "The password of your account at " + b.Name + " was just changed, and every other session was signed out.",
		After: "If this was not you, reset your password now from the sign-in page and tell your administrator.",
	})
}

// oneLine drops line breaks from a name used in a subject.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
