package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/idpclient"
)

// TestDecisionCounters: each decision lands in the series of its result
// and reason, unknown codes in "other", and the histogram counts them all.
func TestDecisionCounters(t *testing.T) {
	m := New(Options{})
	m.ObserveCheck(extauthz.Allow, "", "acme", 40*time.Microsecond)
	m.ObserveCheck(extauthz.Allow, "", "globex", 2*time.Millisecond)
	m.ObserveCheck(extauthz.Redirect, extauthz.CodeUnauthenticated, "acme", time.Microsecond)
	m.ObserveCheck(extauthz.Deny, extauthz.CodeForbidden, "acme", time.Microsecond)
	m.ObserveCheck(extauthz.Deny, "something_new", "", time.Microsecond)

	for _, tc := range []struct {
		result, reason string
		want           float64
	}{
		{"allowed", "none", 2},
		{"allowed_anonymous", "none", 0},
		{"redirected", "unauthenticated", 1},
		{"denied", "forbidden", 1},
		{"denied", "other", 1},
		{"denied", "unknown_tenant", 0},
	} {
		if got := testutil.ToFloat64(m.decisions.WithLabelValues(tc.result, tc.reason)); got != tc.want {
			t.Errorf("decisions{result=%q,reason=%q} = %v, want %v", tc.result, tc.reason, got, tc.want)
		}
	}
	var h dto.Metric
	if err := m.duration.Write(&h); err != nil {
		t.Fatal(err)
	}
	cumulative := map[float64]uint64{}
	for _, b := range h.GetHistogram().GetBucket() {
		cumulative[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if len(cumulative) != 15 || cumulative[0.000025] != 3 || cumulative[0.00005] != 4 || cumulative[0.001] != 4 || cumulative[0.0025] != 5 || cumulative[1] != 5 {
		t.Errorf("duration buckets = %v, want 15 buckets from 25µs to 1s: 3 by 25µs, 4 by 50µs, 5 by 2.5ms", cumulative)
	}
	if h.GetHistogram().GetSampleCount() != 5 {
		t.Errorf("duration count = %d, want 5", h.GetHistogram().GetSampleCount())
	}
	// No tenant label unless asked for.
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "tenant" {
					t.Errorf("%s has a tenant label without TenantLabel", f.GetName())
				}
			}
		}
	}
}

// TestTenantLabelCapped: with TenantLabel, the first TenantLimit tenants
// get their own label value and every later one "_other", so the series
// grow with the limit, not with the tenants; no tenant is "_none".
func TestTenantLabelCapped(t *testing.T) {
	m := New(Options{TenantLabel: true, TenantLimit: 3})
	for i := range 1000 {
		m.ObserveCheck(extauthz.Allow, "", fmt.Sprintf("t%04d", i), time.Microsecond)
	}
	m.ObserveCheck(extauthz.Deny, extauthz.CodeUnknownTenant, "", time.Microsecond)
	m.ObserveCheck(extauthz.Allow, "", "t0001", time.Microsecond)
	m.SignIn("t0002", "password", "success")
	m.SignIn("t0500", "password", "password_wrong")

	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"allowed", "none", "t0000"}, 1},
		{[]string{"allowed", "none", "t0001"}, 2},
		{[]string{"allowed", "none", "t0002"}, 1},
		{[]string{"allowed", "none", TenantOther}, 997},
		{[]string{"denied", "unknown_tenant", TenantNone}, 1},
	} {
		if got := testutil.ToFloat64(m.decisions.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("decisions%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.decisions); n != 5 {
		t.Errorf("%d decision series, want 5 (3 tenants, _other, _none)", n)
	}
	if got := testutil.ToFloat64(m.signIns.WithLabelValues("password", "success", "t0002")); got != 1 {
		t.Errorf("signins{t0002,success} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.signIns.WithLabelValues("password", "password_wrong", TenantOther)); got != 1 {
		t.Errorf("signins{_other,password_wrong} = %v, want 1", got)
	}
}

// TestObserveCheckDoesNotAllocate: the hot path allocates nothing once a
// series is resolved, with and without the tenant label.
func TestObserveCheckDoesNotAllocate(t *testing.T) {
	for _, opts := range []Options{{}, {TenantLabel: true, TenantLimit: 2}} {
		m := New(opts)
		m.ObserveCheck(extauthz.Allow, "", "acme", time.Microsecond)
		m.ObserveCheck(extauthz.Allow, "", "a", time.Microsecond)
		m.ObserveCheck(extauthz.Allow, "", "b", time.Microsecond) // _other
		allocs := testing.AllocsPerRun(1000, func() {
			m.ObserveCheck(extauthz.Allow, "", "acme", 30*time.Microsecond)
			m.ObserveCheck(extauthz.Allow, "", "zzz", 30*time.Microsecond)
			m.ObserveCheck(extauthz.Deny, extauthz.CodeForbidden, "acme", 30*time.Microsecond)
		})
		if allocs != 0 {
			t.Errorf("%+v: ObserveCheck allocates %v times per run, want 0", opts, allocs)
		}
	}
}

// TestIdPRequests counts exchanges by kind and result.
func TestIdPRequests(t *testing.T) {
	m := New(Options{})
	m.IdPRequest(idpclient.KindDiscovery, idpclient.ResultOK)
	m.IdPRequest(idpclient.KindJWKS, idpclient.ResultOK)
	m.IdPRequest(idpclient.KindJWKS, idpclient.ResultError)
	if got := testutil.ToFloat64(m.idp.WithLabelValues("jwks", "ok")); got != 1 {
		t.Errorf("idp{jwks,ok} = %v", got)
	}
	if got := testutil.ToFloat64(m.idp.WithLabelValues("jwks", "error")); got != 1 {
		t.Errorf("idp{jwks,error} = %v", got)
	}
}

// BenchmarkObserveCheck is what the metrics add to one Check: a counter
// increment and a histogram observation (the clock reads are in Check).
func BenchmarkObserveCheck(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts Options
	}{{"plain", Options{}}, {"tenant-label", Options{TenantLabel: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			m := New(tc.opts)
			b.ReportAllocs()
			for b.Loop() {
				m.ObserveCheck(extauthz.Allow, "", "acme", 30*time.Microsecond)
			}
		})
	}
}
