package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// populateConfig is the scale case's population: how many tenants and
// users to add to a store, and how.
type populateConfig struct {
	Tenants, Users int
	// Concurrency is how many writes are under way at once.
	Concurrency int
	// Batch is how many tenants one ApplyTenants writes (etcd bounds a
	// transaction's operations: 128 by default, two per new tenant).
	Batch int
	// Prefix starts every tenant id (prefix00000, prefix00001, …).
	Prefix string
	// BuildPasses is how many times the snapshot build is timed.
	BuildPasses int
}

// populateResult is what populate did and measured. It is a JSON line of
// the results file.
type populateResult struct {
	Kind    string `json:"kind"` // "populate"
	Tenants int    `json:"tenants"`
	Users   int    `json:"users"`
	// TenantSeconds and UserSeconds are how long writing them took.
	TenantSeconds float64 `json:"tenant_seconds"`
	UserSeconds   float64 `json:"user_seconds"`
	// SnapshotTenants and SnapshotMembers are what the snapshot built
	// afterwards holds (every tenant in the store, and the members found
	// of the populated users).
	SnapshotTenants int `json:"snapshot_tenants"`
	SnapshotMembers int `json:"snapshot_members"`
	// BuildMs is the time to open the store and build its first snapshot,
	// in a new Store, for each pass.
	BuildMs []float64 `json:"build_ms"`
}

// scaleTenant is populated tenant i: the bench tenant's shape (a password
// method, two roles, three rules), its own id, no domains.
func scaleTenant(prefix string, i int) tenants.Tenant {
	return tenants.Tenant{
		ID:      fmt.Sprintf("%s%05d", prefix, i),
		Name:    fmt.Sprintf("Scale tenant %d", i),
		Status:  tenants.StatusActive,
		Methods: []tenants.Method{{Type: tenants.MethodPassword}},
		Roles: map[string]tenants.Role{
			"admin":  {Permissions: []string{"*"}, Inherits: []string{"member"}},
			"member": {Permissions: []string{"docs:read"}},
		},
		Rules: []tenants.Rule{
			{Path: "/public/", Access: tenants.AccessAnonymous},
			{Path: "/admin/", Permission: "admin:access"},
			{Path: "/app/", Methods: []string{"GET", "HEAD"}, Permission: "docs:read"},
		},
	}
}

// scaleIdentity is populated user j: an SSO-style identity (Store.UpsertExternalUser)
// of tenant j mod the number of tenants, a member. SSO users have no
// password, so populating them costs no password hashing.
func scaleIdentity(j int) tenants.ExternalIdentity {
	return tenants.ExternalIdentity{
		Method:  "oidc#0",
		Issuer:  "https://idp.scale.test",
		Subject: fmt.Sprintf("user-%06d", j),
		Email:   fmt.Sprintf("user-%06d@scale.test", j),
		Roles:   []string{"member"},
	}
}

// populate adds cfg.Tenants tenants and cfg.Users users (each a member of
// one tenant, spread evenly) to st through the Store API, cfg.Concurrency
// writes at a time, then times a snapshot build with open (a new Store,
// as a replica starting up builds it). st must be a Store whose Snapshot
// follows its writes (both backends' do). Writing again into a populated
// store updates the same tenants and users.
func populate(ctx context.Context, st tenants.Store, sealer *seal.Sealer, open func() (tenants.Store, error), cfg populateConfig) (*populateResult, error) {
	if cfg.Tenants < 1 || cfg.Users < 0 || cfg.Concurrency < 1 || cfg.Batch < 1 || cfg.BuildPasses < 1 {
		return nil, errors.New("populate: need tenants >= 1, users >= 0, concurrency >= 1, batch >= 1, build passes >= 1")
	}
	res := &populateResult{Kind: "populate", Tenants: cfg.Tenants, Users: cfg.Users}
	opts := tenants.ApplyOptions{NewKey: func(id string) (tenants.SigningKey, error) {
		return session.NewSigningKey(sealer, id, time.Now())
	}}
	start := time.Now()
	batches := (cfg.Tenants + cfg.Batch - 1) / cfg.Batch
	err := parallel(ctx, cfg.Concurrency, batches, func(b int) error {
		var ts []tenants.Tenant
		for i := b * cfg.Batch; i < min((b+1)*cfg.Batch, cfg.Tenants); i++ {
			ts = append(ts, scaleTenant(cfg.Prefix, i))
		}
		if _, err := st.ApplyTenants(ctx, ts, opts); err != nil {
			return fmt.Errorf("populate: tenants %s…: %w", ts[0].ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.TenantSeconds = time.Since(start).Seconds()

	// The snapshot names each tenant's internal id; reading it also has
	// the store follow its writes, so that an SSO upsert finds its tenant
	// without reading every tenant (etcdstore).
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("populate: snapshot: %w", err)
	}
	internal := make([]string, cfg.Tenants)
	for i := range internal {
		t := snap.BySlug(scaleTenant(cfg.Prefix, i).ID)
		if t == nil {
			return nil, fmt.Errorf("populate: tenant %s missing after it was written", scaleTenant(cfg.Prefix, i).ID)
		}
		internal[i] = t.InternalID
	}
	start = time.Now()
	userIDs := make([]string, cfg.Users)
	err = parallel(ctx, cfg.Concurrency, cfg.Users, func(j int) error {
		u, err := st.UpsertExternalUser(ctx, internal[j%cfg.Tenants], scaleIdentity(j))
		if err != nil {
			return fmt.Errorf("populate: user %d: %w", j, err)
		}
		userIDs[j] = u.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.UserSeconds = time.Since(start).Seconds()

	for range cfg.BuildPasses {
		runtime.GC()
		start := time.Now()
		fresh, err := open()
		if err != nil {
			return nil, fmt.Errorf("populate: open: %w", err)
		}
		snap, err = fresh.Snapshot(ctx)
		elapsed := time.Since(start)
		if cerr := fresh.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("populate: snapshot build: %w", err)
		}
		res.BuildMs = append(res.BuildMs, float64(elapsed)/float64(time.Millisecond))
	}
	// The built snapshot must hold what was written: every tenant, and
	// every user a member with the role given.
	res.SnapshotTenants = snap.Len()
	for j, id := range userIDs {
		if roles, ok := snap.Membership(internal[j%cfg.Tenants], id); ok && slices.Equal(roles, []string{"member"}) {
			res.SnapshotMembers++
		}
	}
	if res.SnapshotTenants < cfg.Tenants || res.SnapshotMembers != cfg.Users {
		return nil, fmt.Errorf("populate: the snapshot built afterwards holds %d tenants and %d of the %d members, want at least %d tenants and all members",
			res.SnapshotTenants, res.SnapshotMembers, cfg.Users, cfg.Tenants)
	}
	return res, nil
}

// parallel runs f(0) … f(n-1) on workers goroutines and returns the first
// error; after one, the remaining calls are not started.
func parallel(ctx context.Context, workers, n int, f func(int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// cmdPopulate is `loadgen populate`: the scale case's tenants and users,
// written into an etcd store through the Store API.
func cmdPopulate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("populate", flag.ContinueOnError)
	endpoints := fs.String("etcd-endpoints", "", "etcd client URLs, comma-separated (plain http:// on loopback)")
	prefix := fs.String("etcd-prefix", etcdstore.DefaultPrefix, "key prefix of the store")
	keyFile := fs.String("master-key-file", "", "the master key file the store is written with")
	cfg := populateConfig{}
	fs.IntVar(&cfg.Tenants, "tenants", 10_000, "tenants to add")
	fs.IntVar(&cfg.Users, "users", 100_000, "users to add, each a member of one of them")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "writes under way at once")
	fs.IntVar(&cfg.Batch, "batch", 50, "tenants per write")
	fs.StringVar(&cfg.Prefix, "tenant-prefix", "scale", "tenant ids are this plus a five-digit number")
	fs.IntVar(&cfg.BuildPasses, "build-passes", 3, "times the snapshot build (open + first snapshot) is timed")
	results := fs.String("results", "", "append the result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoints == "" || *keyFile == "" || fs.NArg() != 0 {
		return errors.New("populate: need -etcd-endpoints and -master-key-file, and no arguments")
	}
	sealer, err := seal.LoadOrCreateMasterKey(*keyFile)
	if err != nil {
		return fmt.Errorf("populate: master key: %w", err)
	}
	open := func() (tenants.Store, error) {
		return etcdstore.Open(etcdstore.Options{Endpoints: strings.Split(*endpoints, ","), Prefix: *prefix, CallTimeout: 30 * time.Second})
	}
	st, err := open()
	if err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	defer st.Close()
	res, err := populate(ctx, st, sealer, open, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "populated %d tenants in %.1fs and %d users in %.1fs (%.0f users/s); snapshot build (open + first snapshot): %s\n",
		res.Tenants, res.TenantSeconds, res.Users, res.UserSeconds, float64(res.Users)/max(res.UserSeconds, 1e-9), fmtMs(res.BuildMs))
	if *results != "" {
		return appendJSON(*results, res)
	}
	return nil
}

// fmtMs lists durations in milliseconds.
func fmtMs(ms []float64) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%.0fms", m)
	}
	return strings.Join(parts, ", ")
}
