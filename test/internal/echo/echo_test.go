package echo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestHandlerEchoesEveryHeaderValue(t *testing.T) {
	h := &Handler{}
	tests := []struct {
		name    string
		headers [][2]string
		want    map[string][]string
	}{
		{"single", [][2]string{{"X-Tenant-Id", "acme"}}, map[string][]string{"x-tenant-id": {"acme"}}},
		{"duplicates in order", [][2]string{{"X-Tenant-Id", "a"}, {"X-Tenant-Id", "b"}}, map[string][]string{"x-tenant-id": {"a", "b"}}},
		{"no headers", nil, map[string][]string{}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/p?q=1", nil)
			req.Host = "acme.app.test"
			for _, kv := range tc.headers {
				req.Header.Add(kv[0], kv[1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var got Request
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Method != http.MethodPost || got.Path != "/p?q=1" || got.Host != "acme.app.test" {
				t.Errorf("got %s %s host %s", got.Method, got.Path, got.Host)
			}
			for name, want := range tc.want {
				if !slices.Equal(got.Values(name), want) {
					t.Errorf("%s = %q, want %q", name, got.Values(name), want)
				}
			}
			if len(got.Headers) != len(tc.want) {
				t.Errorf("headers = %v, want %v", got.Headers, tc.want)
			}
			if h.Hits() != i+1 || len(h.Requests()) != i+1 {
				t.Errorf("Hits = %d, Requests = %d, want %d", h.Hits(), len(h.Requests()), i+1)
			}
		})
	}
}
