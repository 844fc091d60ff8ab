package tenants

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidateOptions relax or extend Validate.
type ValidateOptions struct {
	// AllowLoopbackHTTPIDP accepts IdP URLs (oidc issuer, saml
	// idpMetadataURL) on a loopback address (127.0.0.0/8, [::1], localhost),
	// over http:// as well as https://. For tests and local development
	// only (--allow-loopback-http-idp). Without it, loopback and http:// IdP
	// URLs are refused.
	AllowLoopbackHTTPIDP bool
	// BaseDomains, when set, are the canonical base domains: a custom domain
	// equal to or under one is refused (the resolver would ignore it anyway).
	BaseDomains []string
	// Methods are the method types this build offers, each with the Config
	// that validates its entries; a method of any other type is an error.
	Methods MethodTypes
}

// Limits on tenant file values.
const (
	maxNameLen        = 200  // bytes of a tenant's display name
	maxPermissionLen  = 128  // bytes of a permission
	maxURLLen         = 2048 // bytes of an IdP URL
	maxClientFieldLen = 1024 // bytes of a client id or secret
)

// Validate checks a batch of tenants as one tenant file: each tenant on its
// own and the batch as a whole (no duplicate ids, no domain or email domain
// claimed twice). It reports every problem at once (errors.Join), each naming
// the tenant and the field, for example
//
//	tenant "acme": domains[1] "Bad..Host": not a valid host name
//
// Validate also canonicalises, in place: every entry of Domains and
// EmailDomains that is valid is replaced by its CanonicalDomain form (so
// "Login.Acme.Test." becomes "login.acme.test"), which is the form the store
// and the resolver use, and every valid entry of TrustedOrigins by its
// canonical Origin form ("HTTPS://Admin.Acme.Test:443" becomes
// "https://admin.acme.test"). It changes nothing else. Call it on the output of
// ParseFile before Store.ApplyTenants.
//
// It checks: the id's syntax (ValidTenantID); the name (at most 200 bytes,
// printable UTF-8); status ("", active, suspended); domains and email
// domains; methods (at least one, each of a type in opts.Methods; a field
// the type's Config does not have is an error naming it, and the type's
// Config validates the rest: MethodConfig.Validate, with the checks of
// MethodCheck, among them that every role named in groupRoles or
// defaultRoles is one of the tenant's and that IdP URLs do not point at
// link-local, metadata, private or unspecified addresses, nor at loopback
// without AllowLoopbackHTTPIDP); roles (names like tenant ids, permissions
// well-formed, inherits naming existing roles, no inheritance cycle, at most
// 256 roles, 1024 permissions and 256 inherits per role, 4096 distinct
// permissions, inheritance chains at most 16 steps long); rules (a clean
// absolute path, methods omitted or a non-empty list of upper-case method
// tokens other than "*", access "", anonymous or authenticated, no
// permission on an anonymous rule, a well-formed permission); branding
// (logoURL as LogoOrigin accepts it, accentColor as ParseAccentColor accepts
// it); mfa (off, optional or required); trustedOrigins (at most 64 exact origins as ParseOrigin reads
// them, no duplicates). passSessionCookie is a boolean, which ParseFile has
// already type-checked: either value is valid.
func Validate(ts []Tenant, opts ValidateOptions) error {
	v := &validator{opts: opts}
	ids := map[string]int{}
	domains := map[string]string{}      // canonical domain -> tenant id
	emailDomains := map[string]string{} // canonical email domain -> tenant id
	for i := range ts {
		t := &ts[i]
		who := fmt.Sprintf("tenant %q", t.ID)
		if t.ID == "" {
			who = fmt.Sprintf("tenants[%d]", i)
		}
		v.who = who
		v.tenant(t)
		if t.ID != "" {
			if j, dup := ids[t.ID]; dup {
				v.add("id: duplicate id (tenants[%d] and tenants[%d])", j, i)
			} else {
				ids[t.ID] = i
			}
		}
		v.domainList("domains", t.ID, t.Domains, domains, true)
		v.domainList("emailDomains", t.ID, t.EmailDomains, emailDomains, false)
	}
	return errors.Join(v.errs...)
}

type validator struct {
	opts ValidateOptions
	who  string
	errs []error
}

func (v *validator) add(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: "+format, append([]any{v.who}, args...)...))
}

func (v *validator) tenant(t *Tenant) {
	switch {
	case t.ID == "":
		v.add("id: missing")
	case !ValidTenantID(t.ID):
		v.add("id %q: must be 1-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen", t.ID)
	}
	if len(t.Name) > maxNameLen {
		v.add("name: longer than %d bytes", maxNameLen)
	} else if !printable(t.Name) {
		v.add("name %q: must be printable UTF-8 text", t.Name)
	}
	switch t.Status {
	case "", StatusActive, StatusSuspended:
	default:
		v.add("status %q: must be active or suspended", t.Status)
	}
	v.methods(t.Methods, t.Roles)
	v.roles(t.Roles)
	v.rules(t.Rules)
	v.branding(t.Branding)
	v.mfa(t.MFA)
	v.trustedOrigins(t.TrustedOrigins)
}

// branding checks the optional sign-in page look. The logo URL is not
// echoed when it is too long to be worth reading back.
func (v *validator) branding(b Branding) {
	if b.LogoURL != "" {
		if _, err := LogoOrigin(b.LogoURL); err != nil {
			if len(b.LogoURL) > maxLogoURLLen {
				v.add("branding.logoURL: %v", err)
			} else {
				v.add("branding.logoURL %q: %v", b.LogoURL, err)
			}
		}
	}
	if b.AccentColor != "" {
		if _, err := ParseAccentColor(b.AccentColor); err != nil {
			v.add("branding.accentColor %q: %v", b.AccentColor, err)
		}
	}
}

// domainList canonicalises list in place and records each entry in claimed,
// reporting invalid entries and entries claimed twice.
func (v *validator) domainList(field, id string, list []string, claimed map[string]string, custom bool) {
	seen := map[string]int{}
	for i, raw := range list {
		c, err := CanonicalDomain(raw)
		if err != nil {
			v.add("%s[%d] %q: %v", field, i, raw, err)
			continue
		}
		list[i] = c
		if custom {
			for _, b := range v.opts.BaseDomains {
				if c == b || strings.HasSuffix(c, "."+b) {
					v.add("%s[%d] %q: is under the base domain %q; hosts there resolve by their first label only", field, i, raw, b)
				}
			}
		}
		if j, dup := seen[c]; dup {
			v.add("%s[%d] %q: duplicates %s[%d]", field, i, raw, field, j)
			continue
		}
		seen[c] = i
		if owner, taken := claimed[c]; taken {
			v.add("%s[%d] %q: also claimed by tenant %q", field, i, c, owner)
			continue
		}
		claimed[c] = id
	}
}

// Limits on method fields.
const (
	maxLabelLen      = 100  // bytes of a button label
	maxAttributeLen  = 256  // bytes of a claim, attribute or userinfo field name
	maxScopes        = 32   // scopes per method
	maxScopeLen      = 128  // bytes of a scope
	maxGroupRoles    = 1000 // entries of groupRoles
	maxGroupLen      = 512  // bytes of a group name
	maxRolesPerGroup = 64   // roles one group maps to
)

func (v *validator) methods(ms []Method, roles map[string]Role) {
	if len(ms) == 0 {
		v.add("methods: at least one sign-in method is needed")
	}
	seen := map[string]int{}
	for i, m := range ms {
		f := fmt.Sprintf("methods[%d]", i)
		mt, known := v.opts.Methods.Lookup(m.Type)
		switch {
		case m.Type == "":
			v.add("%s.type: missing (one of %s)", f, v.opts.Methods.names())
			continue
		case !known:
			v.add("%s.type %q: must be one of %s", f, m.Type, v.opts.Methods.names())
			continue
		}
		seen[m.Type]++
		c := &MethodCheck{v: v, f: f, m: m, roles: roles, nth: seen[m.Type]}
		cfg := mt.NewConfig()
		keys, _, err := configMembers(m.Config)
		if err != nil {
			c.Errorf("", "%v", err)
			continue
		}
		fields := configFields(cfg)
		for _, k := range keys {
			if !slices.ContainsFunc(fields, func(f configField) bool { return f.name == k }) {
				c.NotAField(k)
			}
		}
		if len(m.Config) > 0 {
			if err := json.Unmarshal(m.Config, cfg); err != nil {
				c.Errorf("", "%v", err)
				continue
			}
		}
		cfg.Validate(m, c)
	}
}

// idpURL checks an IdP URL: absolute https (or http to loopback when
// allowed), a valid host, no userinfo or fragment, and for an OIDC issuer no
// query either (OpenID Connect Discovery §3).
func (v *validator) idpURL(raw string, issuer bool) error {
	if len(raw) > maxURLLen {
		return fmt.Errorf("longer than %d bytes", maxURLLen)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return errors.New("contains a space, control or non-ASCII character")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return errors.New("must be an absolute https:// URL")
	}
	if u.User != nil {
		return errors.New("must not contain a user name or password")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if issuer && (u.RawQuery != "" || u.ForceQuery) {
		return errors.New("an issuer must not contain a query")
	}
	host := u.Hostname()
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return errors.New("port must be a number from 1 to 65535")
		}
	}
	loopback := false
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		switch {
		case a.Zone() != "":
			return errors.New("must not carry an IPv6 zone")
		case a.IsLoopback():
			loopback = true
		case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(),
			a.IsMulticast(), a.IsUnspecified(), a.IsPrivate(), !a.IsGlobalUnicast():
			return errors.New("must not point at a link-local, metadata, private or unspecified address")
		}
	} else {
		h, err := CanonicalDomain(host)
		if err != nil {
			return errors.New("host is not a valid domain name")
		}
		switch {
		case h == "localhost" || strings.HasSuffix(h, ".localhost"):
			loopback = true
		case h == "metadata" || h == "metadata.google.internal" || strings.HasSuffix(h, ".internal") && strings.HasPrefix(h, "metadata."):
			return errors.New("must not point at a cloud metadata service")
		}
	}
	switch {
	case loopback && !v.opts.AllowLoopbackHTTPIDP:
		return errors.New("must not point at a loopback address (allowed only with --allow-loopback-http-idp)")
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	case u.Scheme == "http":
		return errors.New("must use https (http:// is accepted only for loopback addresses with --allow-loopback-http-idp)")
	default:
		return errors.New("must be an absolute https:// URL")
	}
	return nil
}

// roles checks role names, permissions and inheritance, and the limits
// that keep HasPermission's index small: at most maxRoles roles,
// maxRolePermissions permissions and maxRoleInherits inherits per role,
// maxTenantPermissions distinct permissions, and inheritance chains at most
// maxInheritDepth steps long.
func (v *validator) roles(roles map[string]Role) {
	if len(roles) > maxRoles {
		v.add("roles: %d roles, more than the %d a tenant may have", len(roles), maxRoles)
	}
	names := make([]string, 0, len(roles))
	for name := range roles {
		names = append(names, name)
	}
	slices.Sort(names)
	distinct := map[string]bool{}
	for _, name := range names {
		r := roles[name]
		if !ValidTenantID(name) {
			v.add("roles %q: a role name must be 1-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen", name)
		}
		if len(r.Permissions) > maxRolePermissions {
			v.add("roles.%s.permissions: %d permissions, more than the %d a role may list", name, len(r.Permissions), maxRolePermissions)
		}
		for i, p := range r.Permissions {
			if err := checkPermission(p); err != nil {
				v.add("roles.%s.permissions[%d] %q: %v", name, i, p, err)
			}
			distinct[p] = true
		}
		if len(r.Inherits) > maxRoleInherits {
			v.add("roles.%s.inherits: %d entries, more than the %d a role may list", name, len(r.Inherits), maxRoleInherits)
		}
		for i, parent := range r.Inherits {
			if _, ok := roles[parent]; !ok {
				v.add("roles.%s.inherits[%d] %q: no such role", name, i, parent)
			}
		}
	}
	if len(distinct) > maxTenantPermissions {
		v.add("roles: %d distinct permissions, more than the %d a tenant may grant (use \"ns:*\" for a whole namespace)", len(distinct), maxTenantPermissions)
	}
	// Cycles: depth-first search; each cycle is reported once, from the
	// first role (in sorted order) found on it.
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = onStack
		stack = append(stack, name)
		for _, parent := range roles[name].Inherits {
			if _, ok := roles[parent]; !ok {
				continue
			}
			switch state[parent] {
			case onStack:
				start := slices.Index(stack, parent)
				cycle := append(slices.Clone(stack[start:]), parent)
				v.add("roles: inheritance cycle %s", strings.Join(cycle, " -> "))
			case unvisited:
				visit(parent)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	cycles := len(v.errs)
	for _, name := range names {
		if state[name] == unvisited {
			visit(name)
		}
	}
	if len(v.errs) == cycles {
		v.inheritDepth(roles, names)
	}
}

// inheritDepth reports every role from which a chain of inherits runs more
// than maxInheritDepth steps, unless a role inheriting it already starts a
// longer such chain (one error per over-deep chain, not one per role on
// it). roles must have no cycle.
func (v *validator) inheritDepth(roles map[string]Role, names []string) {
	depth := make(map[string]int, len(roles))
	deepest := map[string]string{} // role -> the parent its longest chain goes through
	var measure func(name string) int
	measure = func(name string) int {
		if d, ok := depth[name]; ok {
			return d
		}
		d := 0
		for _, parent := range roles[name].Inherits {
			if _, ok := roles[parent]; !ok {
				continue
			}
			if pd := measure(parent) + 1; pd > d {
				d, deepest[name] = pd, parent
			}
		}
		depth[name] = d
		return d
	}
	for _, name := range names {
		measure(name)
	}
	inheritedByDeep := map[string]bool{}
	for _, name := range names {
		if depth[name] > maxInheritDepth {
			for _, parent := range roles[name].Inherits {
				inheritedByDeep[parent] = true
			}
		}
	}
	for _, name := range names {
		if depth[name] <= maxInheritDepth || inheritedByDeep[name] {
			continue
		}
		chain := []string{name}
		for r := name; deepest[r] != "" && len(chain) <= maxInheritDepth+1; r = deepest[r] {
			chain = append(chain, deepest[r])
		}
		if depth[name] > maxInheritDepth+1 {
			chain = append(chain, "...")
		}
		v.add("roles.%s.inherits: an inheritance chain of %d steps, more than %d: %s", name, depth[name], maxInheritDepth, strings.Join(chain, " -> "))
	}
}

func (v *validator) rules(rules []Rule) {
	for i, r := range rules {
		f := fmt.Sprintf("rules[%d]", i)
		if err := checkRulePath(r.Path); err != nil {
			v.add("%s.path %q: %v", f, r.Path, err)
		}
		if r.Methods != nil && len(r.Methods) == 0 {
			// Listing no method would read as "no method may pass" but
			// means "every method": say so rather than guess.
			v.add("%s.methods: empty (omit methods for a rule that matches every method)", f)
		}
		for j, m := range r.Methods {
			switch {
			case m == "*":
				v.add("%s.methods[%d] %q: not a method (omit methods for a rule that matches every method)", f, j, m)
			case !methodToken(m):
				// Methods are case-sensitive (RFC 9110 §9.1): "get"
				// would never match a GET, so it is refused rather
				// than left to refuse every request on the path.
				v.add("%s.methods[%d] %q: must be an upper-case HTTP method such as GET or POST (methods are case-sensitive)", f, j, m)
			}
		}
		switch r.Access {
		case "", AccessAuthenticated:
		case AccessAnonymous:
			if r.Permission != "" {
				v.add("%s: an anonymous rule cannot require a permission", f)
			}
		default:
			v.add("%s.access %q: must be anonymous or authenticated", f, r.Access)
		}
		if r.Permission != "" {
			if err := checkPermission(r.Permission); err != nil {
				v.add("%s.permission %q: %v", f, r.Permission, err)
			}
		}
	}
}

// checkRulePath: rules match the decoded request path, so a rule path is
// written decoded and clean.
func checkRulePath(p string) error {
	switch {
	case p == "":
		return errors.New("missing")
	case !strings.HasPrefix(p, "/"):
		return errors.New("must start with /")
	case len(p) > maxURLLen:
		return fmt.Errorf("longer than %d bytes", maxURLLen)
	case !utf8.ValidString(p):
		return errors.New("must be UTF-8")
	case strings.Contains(p, "//"):
		return errors.New("must not contain an empty segment (//)")
	}
	for _, r := range p {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || strings.ContainsRune(`\?#%;`, r) {
			return errors.New(`must not contain spaces, control characters, \, ?, #, % or ;`)
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return errors.New("must not contain . or .. segments")
		}
	}
	return nil
}

// checkPermission: printable ASCII, no whitespace or comma, at most 128
// bytes. "*" means every permission and "ns:*" every permission in ns.
func checkPermission(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case len(p) > maxPermissionLen:
		return fmt.Errorf("longer than %d bytes", maxPermissionLen)
	case !visibleASCII(p) || strings.ContainsRune(p, ','):
		return errors.New("must be printable ASCII without spaces or commas")
	}
	return nil
}

// methodToken: an RFC 9110 token with no lower-case letters.
func methodToken(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// visibleASCII: every byte in 0x21-0x7e.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// printable: valid UTF-8 of printable characters (spaces allowed).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}
