package idpclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestObserve: every exchange is reported with the kind its context says
// (or the client's DefaultKind, or other) and its result: ok, http_error
// for a 4xx/5xx, error when no response came.
func TestObserve(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	type seen struct {
		kind   Kind
		result string
	}
	var got []seen
	c := New(Options{AllowLoopbackHTTP: true, Observe: func(k Kind, result string) { got = append(got, seen{k, result}) }})
	get := func(ctx context.Context, c *http.Client, url string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	ctx := context.Background()
	get(WithKind(ctx, KindDiscovery), c, srv.URL+"/ok")
	get(WithKind(ctx, KindToken), c, srv.URL+"/fail")
	get(ctx, c, srv.URL+"/ok")
	get(ctx, DefaultKind(c, KindJWKS), srv.URL+"/ok")
	get(WithKind(ctx, KindUserInfo), DefaultKind(c, KindJWKS), srv.URL+"/ok")
	get(WithKind(ctx, KindMetadata), c, "https://127.0.0.1:1/")
	want := []seen{
		{KindDiscovery, ResultOK}, {KindToken, ResultHTTPError}, {KindOther, ResultOK},
		{KindJWKS, ResultOK}, {KindUserInfo, ResultOK}, {KindMetadata, ResultError},
	}
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("exchange %d observed as %v, want %v", i, got[i], want[i])
		}
	}
}
