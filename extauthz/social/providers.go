package social

// Provider describes an OAuth 2.0 provider: where to send the browser, where
// to redeem codes, where to ask who signed in, and which userinfo members
// answer. The presets are values of this type; a generic method builds one
// from its tenant entry.
type Provider struct {
	// Key names the provider in identities (Identity.Issuer): the preset name,
	// or the authorization URL's origin for generic providers.
	Key string
	// Label is the default button text.
	Label string
	// AuthURL, TokenURL and UserinfoURL are the authorization, token and
	// userinfo endpoints. All must be https.
	AuthURL, TokenURL, UserinfoURL string
	// Scopes are requested on every attempt, before the method's own.
	Scopes []string
	// IDField names the userinfo member holding the immutable account id.
	IDField string
	// EmailField names the member holding the email; "" means no email.
	EmailField string
	// EmailVerifiedField names a member that is the JSON value true when the
	// provider verified the email; "" means emails are never verified.
	EmailVerifiedField string
	// NameFields are tried in order for the display name.
	NameFields []string
	// GroupsField names the member listing the account's groups, read with
	// signin.ParseGroups and mapped to roles through the method's
	// groupRoles; "" means no groups. Only generic providers set it (from
	// groupsClaim, default "groups"): preset methods carry defaultRoles only.
	GroupsField string
	// EmailsURL, when set, lists the account's addresses as a JSON array of
	// {"email", "primary", "verified"} objects (GitHub's /user/emails); the
	// primary address is used, verified, when the list says so.
	EmailsURL string
	// ResponseIssuer, when set, is the RFC 9207 iss value the provider adds
	// to authorization responses; a different iss fails the attempt.
	ResponseIssuer string
}

// Provider names of the presets, and the generic provider.
const (
	GitHub    = "github"
	Google    = "google"
	Microsoft = "microsoft"
	Generic   = "generic"
)

// Presets returns the built-in providers by name, a fresh map on every call.
func Presets() map[string]Provider {
	return map[string]Provider{
		GitHub: {
			Key:         GitHub,
			Label:       "Sign in with GitHub",
			AuthURL:     "https://github.com/login/oauth/authorize",
			TokenURL:    "https://github.com/login/oauth/access_token",
			UserinfoURL: "https://api.github.com/user",
			Scopes:      []string{"read:user", "user:email"},
			// The numeric id; "login" can be renamed and then taken by
			// someone else.
			IDField:    "id",
			EmailField: "email",
			NameFields: []string{"name", "login"},
			EmailsURL:  "https://api.github.com/user/emails",
		},
		Google: {
			Key:                Google,
			Label:              "Sign in with Google",
			AuthURL:            "https://accounts.google.com/o/oauth2/v2/auth",
			TokenURL:           "https://oauth2.googleapis.com/token",
			UserinfoURL:        "https://openidconnect.googleapis.com/v1/userinfo",
			Scopes:             []string{"openid", "email", "profile"},
			IDField:            "sub",
			EmailField:         "email",
			EmailVerifiedField: "email_verified",
			NameFields:         []string{"name"},
			ResponseIssuer:     "https://accounts.google.com",
		},
		Microsoft: {
			Key:         Microsoft,
			Label:       "Sign in with Microsoft",
			AuthURL:     "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
			TokenURL:    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
			UserinfoURL: "https://graph.microsoft.com/oidc/userinfo",
			Scopes:      []string{"openid", "email", "profile"},
			IDField:     "sub",
			EmailField:  "email",
			// No EmailVerifiedField: Entra ID emails are unverified (nOAuth).
			NameFields: []string{"name"},
		},
	}
}
