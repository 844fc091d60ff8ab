// Package metrics is tenantgate's Prometheus instrumentation, built on
// client_golang with a registry of its own (never the global default), and
// served by serve on --admin-addr at /metrics (docs/operations.md lists
// every metric).
//
// The packages that do the work never import Prometheus: each declares the
// small hook it needs (extauthz.CheckObserver, login.Observer,
// idpclient.Options.Observe) or already keeps a counter
// (session.Verifier.Stats, password.Hasher.InFlight,
// tenants.Current.RefreshFailures), and Metrics implements or reads them.
//
// The Check path costs an atomic load and an increment per decision and
// one histogram observation: its counters are resolved once (WithLabelValues)
// and kept in an array indexed by result and reason, so a Check never
// hashes label values nor allocates.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/idpclient"
	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/session"
)

// DefaultTenantLimit is how many tenants get a tenant label value of their
// own with Options.TenantLabel when Options.TenantLimit is zero.
const DefaultTenantLimit = 100

// Tenant label values that are not tenant ids: an underscore is never in
// one (tenants.ValidTenantID), so neither can collide with a tenant.
const (
	// TenantOther is the tenant label of every tenant seen after the
	// first TenantLimit.
	TenantOther = "_other"
	// TenantNone is the tenant label of a decision no tenant was resolved
	// for (unknown_tenant, bad_request).
	TenantNone = "_none"
)

// Options configure New.
type Options struct {
	// TenantLabel adds a tenant label to tenantgate_check_decisions_total
	// and tenantgate_signins_total (--metrics-tenant-label).
	TenantLabel bool
	// TenantLimit bounds the tenant label's values: the first TenantLimit
	// tenants seen get their own, every later one is TenantOther, so a
	// scrape grows with the limit, not with the number of tenants
	// (--metrics-tenant-limit). Zero means DefaultTenantLimit.
	TenantLimit int
}

// Metrics holds tenantgate's metrics and their registry. It is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	decisions *prometheus.CounterVec
	duration  prometheus.Histogram
	// rows are the decision counters of each tenant label value, or the
	// single row without the tenant label.
	rows *tenantRows

	signIns  *prometheus.CounterVec
	signOuts prometheus.Counter
	sessions *prometheus.CounterVec
	idp      *prometheus.CounterVec
}

// checkBuckets are the buckets of tenantgate_check_duration_seconds, 25 µs
// to 1 s: a cached session answers in microseconds, a fresh token's
// signature check in tens of them, and anything near a second is trouble.
var checkBuckets = []float64{
	0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1,
}

// New returns the metrics with the Go runtime and process collectors
// registered.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	decisionLabels := []string{"result", "reason"}
	signInLabels := []string{"method", "result"}
	if opts.TenantLabel {
		decisionLabels = append(decisionLabels, "tenant")
		signInLabels = append(signInLabels, "tenant")
	}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantgate_check_decisions_total",
		Help: "Check decisions, by result (allowed, allowed_anonymous, redirected, denied) and reason (the CONTRACT error code; none for an allow).",
	}, decisionLabels)
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tenantgate_check_duration_seconds",
		Help:    "Time Check takes to decide, from the call to the decision (the answer's marshalling and gRPC are not included).",
		Buckets: checkBuckets,
	})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantgate_signins_total",
		Help: "Sign-ins to a tenant, by method (password, oidc, saml, social, switch, unknown) and result (success, or the refusal's reason code).",
	}, signInLabels)
	m.signOuts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tenantgate_signouts_total",
		Help: "Sessions signed out at /_auth/logout.",
	})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantgate_sessions_issued_total",
		Help: "Tenant sessions minted, by the method they carry (x-auth-method).",
	}, []string{"method"})
	m.idp = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantgate_idp_requests_total",
		Help: "HTTP exchanges with identity providers, by kind (discovery, jwks, metadata, token, userinfo, other) and result (ok, http_error, error).",
	}, []string{"kind", "result"})
	m.reg.MustRegister(m.decisions, m.duration, m.signIns, m.signOuts, m.sessions, m.idp,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	limit := opts.TenantLimit
	if limit <= 0 {
		limit = DefaultTenantLimit
	}
	m.rows = newTenantRows(m.decisions, opts.TenantLabel, limit)
	// The series every deployment has are there from the first scrape,
	// at zero, so rate() sees their first increase.
	if !opts.TenantLabel {
		row := m.rows.row("")
		row.counter(extauthz.Allow, "")
		row.counter(extauthz.AllowAnonymous, "")
		row.counter(extauthz.Redirect, extauthz.CodeUnauthenticated)
		for _, code := range reasonCodes[1 : len(reasonCodes)-1] {
			row.counter(extauthz.Deny, code)
		}
	}
	for _, method := range []string{session.MethodPassword, session.MethodOIDC, session.MethodSAML, session.MethodSocial} {
		m.sessions.WithLabelValues(method)
	}
	return m
}

// Registry returns the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveCheck counts one Check decision and its duration
// (extauthz.CheckObserver).
func (m *Metrics) ObserveCheck(outcome extauthz.Outcome, code, tenant string, took time.Duration) {
	m.rows.row(tenant).counter(outcome, code).Inc()
	m.duration.Observe(took.Seconds())
}

var _ extauthz.CheckObserver = (*Metrics)(nil)

// SignIn counts a sign-in or a refused one (login.Observer).
func (m *Metrics) SignIn(tenant, method, result string) {
	if m.rows.byTenant {
		m.signIns.WithLabelValues(method, result, m.rows.row(tenant).label).Inc()
		return
	}
	m.signIns.WithLabelValues(method, result).Inc()
}

// SignOut counts a sign-out (login.Observer).
func (m *Metrics) SignOut(string) { m.signOuts.Inc() }

// SessionIssued counts a minted session (login.Observer).
func (m *Metrics) SessionIssued(method string) { m.sessions.WithLabelValues(method).Inc() }

var _ login.Observer = (*Metrics)(nil)

// IdPRequest counts one exchange with an IdP (idpclient.Options.Observe).
func (m *Metrics) IdPRequest(kind idpclient.Kind, result string) {
	m.idp.WithLabelValues(string(kind), result).Inc()
}

// WatchTokenCache exposes the verified-token cache's hits and misses,
// read from v at each scrape.
func (m *Metrics) WatchTokenCache(v *session.Verifier) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tenantgate_token_cache_hits_total",
			Help: "Session token verifications answered from the verified-token cache (no signature check).",
		}, func() float64 { return float64(v.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tenantgate_token_cache_misses_total",
			Help: "Session token verifications that decoded the token and checked its signature.",
		}, func() float64 { return float64(v.Stats().Misses) }),
	)
}

// WatchPasswordHasher exposes how many password hashes h runs now, read at
// each scrape.
func (m *Metrics) WatchPasswordHasher(h *password.Hasher) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tenantgate_password_hash_inflight",
		Help: "Password hashes (argon2id) running now; at the hasher's limit, further sign-ins wait and then get 429.",
	}, func() float64 { return float64(h.InFlight()) }))
}

// Store is what the store metrics read at each scrape.
type Store struct {
	// Tenants is the number of tenants in the snapshot Check answers
	// from, 0 while none is served.
	Tenants func() int
	// Age is how long ago the snapshot served was last known to match the
	// store.
	Age func() time.Duration
	// Errors is how many store operations have failed.
	Errors func() uint64
}

// WatchStore exposes the store metrics.
func (m *Metrics) WatchStore(s Store) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tenantgate_tenants",
			Help: "Tenants in the snapshot Check answers from (0 while none is served).",
		}, func() float64 { return float64(s.Tenants()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tenantgate_snapshot_age_seconds",
			Help: "How long ago the tenant snapshot served was last known to match the store (etcd: last confirmed; bbolt: 0 unless a refresh failed).",
		}, func() float64 { return s.Age().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tenantgate_store_errors_total",
			Help: "Store reads that failed: snapshot refreshes and readiness pings.",
		}, func() float64 { return float64(s.Errors()) }),
	)
}

// reasonCodes are the reason label values of Check decisions, indexed by
// reasonIndex: "none" for an allow, the CONTRACT's error codes, and
// "other" for a code this list does not know.
var reasonCodes = [...]string{
	"none",
	extauthz.CodeUnauthenticated,
	extauthz.CodeTenantMismatch,
	extauthz.CodeForbidden,
	extauthz.CodeCrossOrigin,
	extauthz.CodeTenantSuspended,
	extauthz.CodeUnknownTenant,
	extauthz.CodeBadRequest,
	extauthz.CodeUnavailable,
	"other",
}

// reasonIndex is code's index in reasonCodes.
func reasonIndex(code string) int {
	switch code {
	case "":
		return 0
	case extauthz.CodeUnauthenticated:
		return 1
	case extauthz.CodeTenantMismatch:
		return 2
	case extauthz.CodeForbidden:
		return 3
	case extauthz.CodeCrossOrigin:
		return 4
	case extauthz.CodeTenantSuspended:
		return 5
	case extauthz.CodeUnknownTenant:
		return 6
	case extauthz.CodeBadRequest:
		return 7
	case extauthz.CodeUnavailable:
		return 8
	}
	return len(reasonCodes) - 1
}

// results are the result label values, indexed by extauthz.Outcome.
var results = [...]string{
	extauthz.Allow:          "allowed",
	extauthz.AllowAnonymous: "allowed_anonymous",
	extauthz.Redirect:       "redirected",
	extauthz.Deny:           "denied",
}

// decisionRow is the decision counters of one tenant label value (or of
// all decisions, without the label), each resolved on first use and then
// kept: a Check costs an atomic load, not a label lookup.
type decisionRow struct {
	vec   *prometheus.CounterVec
	label string // "" without the tenant label
	c     [len(results)][len(reasonCodes)]atomic.Pointer[counter]
}

// counter holds a resolved child of the decisions vector.
type counter struct{ prometheus.Counter }

// counter returns the counter of outcome and code, resolving it once.
func (r *decisionRow) counter(outcome extauthz.Outcome, code string) prometheus.Counter {
	o := int(outcome)
	if o <= 0 || o >= len(results) {
		o = int(extauthz.Deny) // an outcome this build does not know refuses
	}
	slot := &r.c[o][reasonIndex(code)]
	if c := slot.Load(); c != nil {
		return c.Counter
	}
	labels := []string{results[o], reasonCodes[reasonIndex(code)]}
	if r.label != "" {
		labels = append(labels, r.label)
	}
	c := &counter{r.vec.WithLabelValues(labels...)}
	slot.CompareAndSwap(nil, c) // a racing resolver found the same child
	return c.Counter
}

// tenantRows finds the decision row of a tenant. Without the tenant label
// every tenant shares one row. With it, the first limit tenants seen get a
// row of their own and every later one the TenantOther row: the set of
// rows only grows, and only up to limit, so it is kept in a map that is
// copied on each addition and read without a lock.
type tenantRows struct {
	byTenant    bool
	limit       int
	all         *decisionRow
	other, none *decisionRow

	mu   sync.Mutex
	seen atomic.Pointer[map[string]*decisionRow]
	full atomic.Bool
}

func newTenantRows(vec *prometheus.CounterVec, byTenant bool, limit int) *tenantRows {
	t := &tenantRows{byTenant: byTenant, limit: limit}
	if !byTenant {
		t.all = &decisionRow{vec: vec}
		return t
	}
	t.other = &decisionRow{vec: vec, label: TenantOther}
	t.none = &decisionRow{vec: vec, label: TenantNone}
	t.seen.Store(&map[string]*decisionRow{"": t.none})
	return t
}

// row returns the decision row of tenant (an id, "" for none).
func (t *tenantRows) row(tenant string) *decisionRow {
	if !t.byTenant {
		return t.all
	}
	if r, ok := (*t.seen.Load())[tenant]; ok {
		return r
	}
	if t.full.Load() {
		return t.other
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.seen.Load()
	if r, ok := old[tenant]; ok {
		return r
	}
	if len(old)-1 >= t.limit { // the none row is not a tenant
		t.full.Store(true)
		return t.other
	}
	next := make(map[string]*decisionRow, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	r := &decisionRow{vec: t.none.vec, label: tenant}
	next[tenant] = r
	t.seen.Store(&next)
	return r
}
