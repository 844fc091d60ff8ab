package tenants

import "time"

// Session is one session as it was issued, recorded so that the person
// holding it can see it and revoke it (the account page, docs/accounts.md).
// A record describes a session; it never makes one valid: the signed token
// does, and a revocation (Revocation) ends it. A session with no record
// (minted before records were kept) still works; it is only not listed.
type Session struct {
	// TenantInternalID and UserID are whose session it is; SID is its
	// session id (the token's sid claim).
	TenantInternalID string
	UserID           string
	SID              string
	// Issued and Expires are the token's iat and exp.
	Issued  time.Time
	Expires time.Time
	// Device is a short label derived from the User-Agent ("Firefox on
	// Linux"), never the header itself; Address is the client address;
	// Method how the person signed in (password, oidc, saml, social,
	// switch), followed by "+otp" or "+hwk" when a second step was passed
	// ("password+otp").
	Device  string
	Address string
	Method  string
}

// Limits on a recorded session. A backend refuses a Session over them: they
// are what a label, an address and a method name ever need.
const (
	// MaxSessionsPerUser is how many sessions of one person in one tenant
	// are recorded at once. Recording one more drops the oldest and
	// revokes it (Store.RecordSession): one account cannot fill the
	// store, and no session lives that its holder cannot see.
	MaxSessionsPerUser = 50
	// MaxSessionFieldLen bounds SID, Device, Address and Method.
	MaxSessionFieldLen = 128
)
