package main

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
	"github.com/tenantgate/tenantgate/test/internal/etcdcluster"
)

// TestPopulateEtcd: the scale case's population, small, against a real
// etcd: every tenant and member is in the snapshot built afterwards (in
// batches of the default size, which must fit etcd's default limit on a
// transaction), and a populated member's session is allowed by Check as
// `serve` wires it.
func TestPopulateEtcd(t *testing.T) {
	cl := etcdcluster.Start(t, etcdcluster.Options{Members: 1})
	open := func() (tenants.Store, error) {
		return etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), TLS: cl.TLS(), Prefix: "/scale/"})
	}
	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cfg := populateConfig{Tenants: 50, Users: 500, Concurrency: 8, Batch: 50, Prefix: "scale", BuildPasses: 2}
	res, err := populate(ctx, st, sealer, open, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.SnapshotTenants != 50 || res.SnapshotMembers != 500 || len(res.BuildMs) != 2 {
		t.Fatalf("populate: %+v, want 50 tenants, 500 members and 2 build times", res)
	}
	// Writing again updates the same tenants and users.
	if res, err = populate(ctx, st, sealer, open, cfg); err != nil || res.SnapshotTenants != 50 {
		t.Fatalf("populate again: %+v, %v", res, err)
	}

	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cur := &tenants.Current{}
	if err := cur.Refresh(ctx, st); err != nil {
		t.Fatal(err)
	}
	const j = 123 // user-000123, a member of scale00023
	tn := snap.BySlug(scaleTenant("scale", j%cfg.Tenants).ID)
	u, err := st.UpsertExternalUser(ctx, tn.InternalID, scaleIdentity(j))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := (&session.Minter{Sealer: sealer, TTL: time.Hour}).Mint(tn, session.Claims{Subject: u.ID, Email: u.Email, Roles: []string{"member"}, Method: session.MethodOIDC})
	if err != nil {
		t.Fatal(err)
	}
	srv := &extauthz.Server{Authorizer: &extauthz.Authorizer{
		Snapshots: cur, Resolver: &tenants.Resolver{BaseDomains: []string{"bench.test"}},
		Verifier: session.NewVerifier(), CookieName: session.CookieName(true),
	}}
	for _, c := range []struct {
		tenant string
		want   int32 // gRPC status code in the answer
	}{
		{tn.ID, 0}, // its own tenant: allowed
		{scaleTenant("scale", j%cfg.Tenants+1).ID, 7}, // another: tenant_mismatch
	} {
		resp, err := srv.Check(ctx, baseRequest(c.tenant+".bench.test", "/app/x", acceptJSON, map[string]string{"authorization": "Bearer " + tok}))
		if err != nil || resp.GetStatus().GetCode() != c.want {
			t.Errorf("Check on %s: status %v (%s), %v; want code %d", c.tenant, resp.GetStatus(), resp.GetDeniedResponse().GetBody(), err, c.want)
		}
	}
}

// flipAuthz answers OK while allow is set, else 403, like a replica under
// the bench tenant's two tenant files.
type flipAuthz struct {
	authv3.UnimplementedAuthorizationServer
	allow *atomic.Bool
}

func (f flipAuthz) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if f.allow.Load() {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: 7},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}}},
	}, nil
}

// TestPropagate: a change posted to the admin API is timed until the
// slowest replica answers by it, alternately refusing and allowing, and
// the tenant is left allowed.
func TestPropagate(t *testing.T) {
	const lag = 30 * time.Millisecond
	states := []*atomic.Bool{{}, {}}
	var replicas []string
	for i, st := range states {
		st.Store(true)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer()
		authv3.RegisterAuthorizationServer(gs, flipAuthz{allow: states[i]})
		go gs.Serve(lis)
		t.Cleanup(gs.Stop)
		replicas = append(replicas, lis.Addr().String())
	}
	var posts atomic.Int32
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/admin/v1/tenants" || r.Header.Get("Authorization") != "Bearer admin-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		posts.Add(1)
		allow := r.ContentLength == int64(len("allow"))        // the deny file is longer
		states[0].Store(allow)                                 // the replica written to at once,
		time.AfterFunc(lag, func() { states[1].Store(allow) }) // the other later
	}))
	defer admin.Close()
	res, err := propagate(t.Context(), propagateConfig{
		AdminURL: admin.URL, AdminToken: "admin-token",
		DenyFile: []byte("deny!!"), AllowFile: []byte("allow"),
		Replicas: replicas, Request: baseRequest("acme.bench.test", "/app/", acceptJSON, nil),
		Changes: 3, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ms) != 3 || res.Replicas != 2 {
		t.Fatalf("result %+v, want 3 changes over 2 replicas", res)
	}
	for i, ms := range res.Ms {
		if ms < float64(lag/time.Millisecond) {
			t.Errorf("change %d: %.1fms, less than the slow replica's lag %s", i+1, ms, lag)
		}
	}
	if posts.Load() != 4 || !states[0].Load() || !states[1].Load() {
		t.Errorf("%d posts, replicas allowing %t %t; want 3 changes and a restore, both allowing", posts.Load(), states[0].Load(), states[1].Load())
	}
}
