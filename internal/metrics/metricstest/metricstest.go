// Package metricstest reads a running tenantgate's /metrics the way
// Prometheus does, for tests: the exposition parsed with
// prometheus/common/expfmt, values looked up by name and labels.
package metricstest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape GETs url (a /metrics URL) and returns its metric families by
// name. It fails the test on any error or a status other than 200.
func Scrape(tb testing.TB, url string) Families {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// Families are a scrape's metric families by name.
type Families map[string]*dto.MetricFamily

// Has reports whether the scrape holds a metric called name (a vector
// without any series yet is not exposed at all).
func (f Families) Has(name string) bool {
	_, ok := f[name]
	return ok
}

// Value sums the series of name whose labels include every label in
// want: a counter's or gauge's value, a histogram's observation count.
// It is 0 when no series matches.
func (f Families) Value(name string, want map[string]string) float64 {
	sum := 0.0
series:
	for _, m := range f[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}
