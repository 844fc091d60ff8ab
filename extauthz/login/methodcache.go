package login

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/tenantgate/tenantgate/extauthz/signin"
	"github.com/tenantgate/tenantgate/tenants"
)

// Opened methods are cached per (tenant internal id, method index). A
// snapshot is rebuilt after every store write, sign-ins included, so the
// tenant pointer changes far more often than its configuration: an entry is
// reused while the pointer is the same, or while the method's configuration
// (its tenants.Method entry, compared byte for byte, the tenant's SAML key,
// and the tenant's mfa policy, which decides whether an SSO method requires
// the provider's MFA) is the same as what it was opened from, and reopened
// otherwise.
const (
	// methodCacheSize bounds the cache; the least recently used entry goes
	// first.
	methodCacheSize = 4096
	// openTimeout bounds one signin.Opener call (a SAML method may fetch IdP
	// metadata).
	openTimeout = 15 * time.Second
	// openRetry is how long a failed open is remembered before it is tried
	// again; the failure is logged once per try.
	openRetry = time.Minute
)

type methodKey struct {
	tenant string
	index  int
}

// openedMethod is one cache entry. done is closed once m or err is set;
// concurrent requests for the same method wait for the one opening it.
type openedMethod struct {
	tenant  *tenants.Tenant
	config  tenants.Method
	samlKey *tenants.SAMLKey
	mfa     string
	done    chan struct{}
	m       signin.Method
	err     error
	failed  time.Time
}

// methodCache holds opened methods.
type methodCache struct {
	mu      sync.Mutex
	entries *simplelru.LRU[methodKey, *openedMethod]
}

func newMethodCache() *methodCache {
	lru, err := simplelru.NewLRU[methodKey, *openedMethod](methodCacheSize, nil)
	if err != nil {
		panic(err) // the size is a positive constant
	}
	return &methodCache{entries: lru}
}

// current reports whether e was opened from t's method i as it is now.
func (e *openedMethod) current(t *tenants.Tenant, i int) bool {
	if e.tenant == t {
		return true
	}
	return e.config.Equal(t.Methods[i]) && e.samlKey.Equal(t.SAMLKey) && e.mfa == t.MFA
}

// errNoOpener: the build wires no signin.Opener for the method's type.
type errNoOpener struct{ typ string }

func (e errNoOpener) Error() string { return fmt.Sprintf("no opener for method type %q", e.typ) }

// method returns the opened method i of tenant t, opening it when needed.
// A method that fails to open is reported as an error (and logged once per
// openRetry), never a panic.
func (h *Handler) method(ctx context.Context, t *tenants.Tenant, i int) (signin.Method, error) {
	if i < 0 || i >= len(t.Methods) {
		return nil, fmt.Errorf("tenant %s has no method %d", t.ID, i)
	}
	typ := t.Methods[i].Type
	open := h.Methods[typ]
	if open == nil {
		return nil, errNoOpener{typ}
	}
	key := methodKey{t.InternalID, i}
	now := h.now()
	c := h.opened
	c.mu.Lock()
	if e, ok := c.entries.Get(key); ok && e.current(t, i) {
		select {
		case <-e.done:
			if e.err == nil || now.Sub(e.failed) < openRetry {
				c.mu.Unlock()
				return e.m, e.err
			}
			// Failed a while ago: try again below.
		default:
			c.mu.Unlock()
			select {
			case <-e.done:
				return e.m, e.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	e := &openedMethod{tenant: t, config: t.Methods[i].Clone(), samlKey: t.SAMLKey, mfa: t.MFA, done: make(chan struct{})}
	c.entries.Add(key, e)
	c.mu.Unlock()

	// The open outlives the request that asked for it: others may be
	// waiting.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
	defer cancel()
	m, err := safeOpen(octx, open, t, i)
	if err == nil && (m == nil || m.Type() != typ) {
		err = fmt.Errorf("opener for %s returned a method of another type", typ)
	}
	e.m, e.err = m, err
	if err != nil {
		e.m = nil
		e.failed = h.now()
		if !errors.Is(err, signin.ErrNotOffered) {
			h.log().ErrorContext(ctx, "sign-in method unavailable", "tenant", t.ID, "method", i, "type", typ, "err", err)
		}
	}
	close(e.done)
	return e.m, e.err
}

// safeOpen calls a signin.Opener, turning a panic into an error: a broken method
// must not take the sign-in page down.
func safeOpen(ctx context.Context, open signin.Opener, t *tenants.Tenant, i int) (m signin.Method, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("opener panicked: %v", r)
		}
	}()
	return open(ctx, t, i)
}
