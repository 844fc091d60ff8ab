package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Tamper reaches a store's records behind its back, as someone with the
// database file or etcd credentials could, so that RunAudit can check that
// the audit chain shows what they did.
type Tamper interface {
	// Raw returns what the store holds under key of namespace ns (a bbolt
	// bucket, an etcd key segment), or nil.
	Raw(t *testing.T, ns, key string) []byte
	// SetRaw stores value under key of namespace ns, or deletes the key
	// when value is nil.
	SetRaw(t *testing.T, ns, key string, value []byte)
}

// RunAudit runs the conformance tests of tenants.AuditLog: open returns a
// new, empty store (which must implement it) and a Tamper on its records.
func RunAudit(t *testing.T, open func(t *testing.T) (tenants.Store, Tamper)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, st tenants.AuditLog, raw Tamper)
	}{
		{"AppendAndList", testAuditAppendAndList},
		{"TimeNeverGoesBack", testAuditTimeNeverGoesBack},
		{"ChangedEventNamed", testAuditChangedEvent},
		{"DeletedEventNamed", testAuditDeletedEvent},
		{"PruneKeepsChain", testAuditPrune},
		{"Refused", testAuditRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := open(t)
			al, ok := st.(tenants.AuditLog)
			if !ok {
				t.Fatalf("%T does not implement tenants.AuditLog", st)
			}
			tc.run(t, al, raw)
		})
	}
	t.Run("SSOFirstSeen", func(t *testing.T) {
		st, _ := open(t)
		c := &crypto{}
		mustApply(t, st, c.opts(), simple("acme"))
		acme := mustTenant(t, st, "acme")
		x := tenants.ExternalIdentity{Method: "oidc#0", Issuer: "https://idp", Subject: "s1", Email: "a@acme.test"}
		for i, want := range []bool{true, false} {
			u, err := st.UpsertExternalUser(ctx(t), acme.InternalID, x)
			if err != nil {
				t.Fatal(err)
			}
			if u.FirstSeen != want {
				t.Errorf("sign-in %d: FirstSeen = %v, want %v", i+1, u.FirstSeen, want)
			}
		}
	})
}

// auditAt is an event of tenant at time at.
func auditAt(tenant, event string, at time.Time) tenants.AuditEvent {
	return tenants.AuditEvent{Time: at, Tenant: tenant, Event: event, Actor: "u1", Subject: "u1",
		Email: "a@acme.test", Client: "192.0.2.1", RequestID: "r-1", Outcome: tenants.OutcomeSuccess}
}

// mustAppend appends n events to tenant, an hour apart from start.
func mustAppend(t *testing.T, st tenants.AuditLog, tenant string, start time.Time, n int) []tenants.AuditEvent {
	t.Helper()
	var out []tenants.AuditEvent
	for i := range n {
		got, err := st.AppendAudit(ctx(t), []tenants.AuditEvent{auditAt(tenant, tenants.AuditSignIn, start.Add(time.Duration(i)*time.Hour))})
		if err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		out = append(out, got...)
	}
	return out
}

func mustVerify(t *testing.T, st tenants.AuditLog, tenant string) tenants.AuditVerdict {
	t.Helper()
	v, err := st.VerifyAudit(ctx(t), tenant)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	return v
}

func mustList(t *testing.T, st tenants.AuditLog, q tenants.AuditQuery) []tenants.AuditEvent {
	t.Helper()
	evs, err := st.AuditEvents(ctx(t), q)
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	return evs
}

func seqs(evs []tenants.AuditEvent) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

// wantBreak fails the test unless tenant's chain breaks first at seq, with
// a problem that says want.
func wantBreak(t *testing.T, st tenants.AuditLog, tenant string, seq uint64, want string) {
	t.Helper()
	v := mustVerify(t, st, tenant)
	switch {
	case v.Break == nil:
		t.Fatalf("verify found no break (%d events), want one at %d", v.Events, seq)
	case v.Break.Seq != seq || !strings.Contains(v.Break.Problem, want):
		t.Fatalf("break at %d (%s), want at %d saying %q", v.Break.Seq, v.Break.Problem, seq, want)
	}
}

func testAuditAppendAndList(t *testing.T, st tenants.AuditLog, _ Tamper) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// Two tenants in one write, then more.
	batch, err := st.AppendAudit(ctx(t), []tenants.AuditEvent{
		auditAt("acme", tenants.AuditSignIn, start),
		auditAt("globex", tenants.AuditSignIn, start),
		auditAt("acme", tenants.AuditSignOut, start.Add(time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(batch); !slices.Equal(got, []uint64{1, 1, 2}) {
		t.Fatalf("seqs of one write = %v, want [1 1 2]", got)
	}
	if batch[0].Prev != "" || batch[2].Prev != batch[0].Hash || batch[0].Hash == "" {
		t.Fatalf("chain of acme: first prev %q, second prev %q, first hash %q", batch[0].Prev, batch[2].Prev, batch[0].Hash)
	}
	mustAppend(t, st, "acme", start.Add(time.Hour), 3)

	all := mustList(t, st, tenants.AuditQuery{Tenant: "acme"})
	if got := seqs(all); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("acme's events = %v, want 1..5", got)
	}
	if all[1].Event != tenants.AuditSignOut || all[1].Email != "a@acme.test" || all[1].Client != "192.0.2.1" ||
		all[1].RequestID != "r-1" || all[1].Outcome != tenants.OutcomeSuccess || all[1].Actor != "u1" {
		t.Errorf("event 2 as listed: %+v", all[1])
	}
	for i := 1; i < len(all); i++ {
		if all[i].Prev != all[i-1].Hash {
			t.Errorf("event %d: prev %q, hash of event %d %q", all[i].Seq, all[i].Prev, all[i-1].Seq, all[i-1].Hash)
		}
	}
	if got := seqs(mustList(t, st, tenants.AuditQuery{Tenant: "globex"})); !slices.Equal(got, []uint64{1}) {
		t.Errorf("globex's events = %v, want [1]", got)
	}
	if got := seqs(mustList(t, st, tenants.AuditQuery{Tenant: "acme", Since: start.Add(90 * time.Minute)})); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("acme since +90m = %v, want [4 5]", got)
	}
	if got := seqs(mustList(t, st, tenants.AuditQuery{Tenant: "acme", Event: tenants.AuditSignOut})); !slices.Equal(got, []uint64{2}) {
		t.Errorf("acme's signouts = %v, want [2]", got)
	}
	if got := mustList(t, st, tenants.AuditQuery{Tenant: "initech"}); len(got) != 0 {
		t.Errorf("initech has events: %v", got)
	}
	if v := mustVerify(t, st, "acme"); v.Break != nil || v.Events != 5 || v.First != 1 || v.Last != 5 {
		t.Errorf("verify acme = %+v (break %v), want 5 events 1..5", v, v.Break)
	}
	if v := mustVerify(t, st, "initech"); v.Break != nil || v.Events != 0 {
		t.Errorf("verify of a tenant without events = %+v", v)
	}
}

func testAuditTimeNeverGoesBack(t *testing.T, st tenants.AuditLog, _ Tamper) {
	late := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	mustAppend(t, st, "acme", late, 1)
	got := mustAppend(t, st, "acme", late.Add(-time.Hour), 1)
	if !got[0].Time.Equal(late) {
		t.Errorf("an event dated before the previous one got time %v, want %v", got[0].Time, late)
	}
}

// eventKey names an event of tenant in NamespaceAudit.
func eventKey(tenant string, seq uint64) string { return record.AuditKey(tenant, seq) }

func testAuditChangedEvent(t *testing.T, st tenants.AuditLog, raw Tamper) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		seq    uint64
		change func(v []byte) []byte
	}{
		{"outcome rewritten", 2, func(v []byte) []byte {
			return bytes.Replace(v, []byte(`"outcome":"success"`), []byte(`"outcome":"refused"`), 1)
		}},
		{"newest event's client rewritten", 4, func(v []byte) []byte {
			return bytes.Replace(v, []byte(`192.0.2.1`), []byte(`192.0.2.9`), 1)
		}},
		{"garbage", 3, func([]byte) []byte { return []byte("not json") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := fmt.Sprintf("t%d", tc.seq)
			mustAppend(t, st, tenant, start, 4)
			if v := mustVerify(t, st, tenant); v.Break != nil {
				t.Fatalf("untouched chain broken: %+v", v.Break)
			}
			key := eventKey(tenant, tc.seq)
			old := raw.Raw(t, record.NamespaceAudit, key)
			changed := tc.change(old)
			if bytes.Equal(old, changed) {
				t.Fatal("the change changed nothing")
			}
			raw.SetRaw(t, record.NamespaceAudit, key, changed)
			wantBreak(t, st, tenant, tc.seq, fmt.Sprintf("event %d", tc.seq))
		})
	}
}

func testAuditDeletedEvent(t *testing.T, st tenants.AuditLog, raw Tamper) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		seq  uint64
	}{{"first", 1}, {"middle", 3}, {"newest", 5}} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := "d-" + tc.name
			mustAppend(t, st, tenant, start, 5)
			raw.SetRaw(t, record.NamespaceAudit, eventKey(tenant, tc.seq), nil)
			wantBreak(t, st, tenant, tc.seq, "missing")
		})
	}
	t.Run("head", func(t *testing.T) {
		mustAppend(t, st, "d-head", start, 2)
		raw.SetRaw(t, record.NamespaceAuditHeads, "d-head", nil)
		wantBreak(t, st, "d-head", 1, "head")
	})
}

func testAuditPrune(t *testing.T, st tenants.AuditLog, raw Tamper) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	all := mustAppend(t, st, "acme", start, 4) // at +0h, +1h, +2h, +3h
	mustAppend(t, st, "globex", start, 1)
	n, err := st.PruneAudit(ctx(t), start.Add(90*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("pruned %d events, want 3 (acme's first two, globex's one)", n)
	}
	if got := seqs(mustList(t, st, tenants.AuditQuery{Tenant: "acme"})); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("acme after prune = %v, want [3 4]", got)
	}
	if v := mustVerify(t, st, "acme"); v.Break != nil || v.Events != 2 || v.First != 3 || v.Pruned != 2 {
		t.Fatalf("verify after prune = %+v (break %v): pruning is not tampering", v, v.Break)
	}
	if v := mustVerify(t, st, "globex"); v.Break != nil || v.Events != 0 {
		t.Fatalf("verify of a chain pruned whole = %+v (break %v)", v, v.Break)
	}
	// The chain goes on from the newest event, pruned or not.
	more := mustAppend(t, st, "globex", start.Add(5*time.Hour), 1)
	if more[0].Seq != 2 || more[0].Prev == "" {
		t.Errorf("after a whole prune the next event is %d with prev %q, want 2 following event 1", more[0].Seq, more[0].Prev)
	}
	next := mustAppend(t, st, "acme", start.Add(5*time.Hour), 1)
	if next[0].Seq != 5 || next[0].Prev != all[3].Hash {
		t.Errorf("next event %d prev %q, want 5 following %q", next[0].Seq, next[0].Prev, all[3].Hash)
	}
	if v := mustVerify(t, st, "globex"); v.Break != nil || v.Events != 1 {
		t.Errorf("globex after prune and append = %+v (break %v)", v, v.Break)
	}
	// Deleting the oldest retained event is no prune: retention did not
	// record it.
	raw.SetRaw(t, record.NamespaceAudit, eventKey("acme", 3), nil)
	wantBreak(t, st, "acme", 3, "missing")
}

func testAuditRefused(t *testing.T, st tenants.AuditLog, _ Tamper) {
	for _, e := range []tenants.AuditEvent{
		{Event: tenants.AuditSignIn},
		{Tenant: "acme"},
		{Tenant: "a/b", Event: tenants.AuditSignIn},
	} {
		if _, err := st.AppendAudit(ctx(t), []tenants.AuditEvent{e}); err == nil {
			t.Errorf("AppendAudit(%+v) succeeded", e)
		}
	}
}

// testSharedAudit: two processes appending to one tenant at once; every
// append succeeds and the chain stays one line.
func testSharedAudit(t *testing.T, a, b tenants.Store) {
	la, ok1 := a.(tenants.AuditLog)
	lb, ok2 := b.(tenants.AuditLog)
	if !ok1 || !ok2 {
		t.Fatalf("%T does not implement tenants.AuditLog", a)
	}
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for i := range writers {
		st := []tenants.AuditLog{la, lb}[i%2]
		wg.Go(func() {
			for range each {
				if _, err := st.AppendAudit(ctx(t), []tenants.AuditEvent{auditAt("acme", tenants.AuditSignIn, time.Time{})}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}
	evs := mustList(t, lb, tenants.AuditQuery{Tenant: "acme"})
	want := make([]uint64, writers*each)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if got := seqs(evs); !slices.Equal(got, want) {
		t.Fatalf("seqs = %v, want 1..%d", got, writers*each)
	}
	for _, st := range []tenants.AuditLog{la, lb} {
		if v := mustVerify(t, st, "acme"); v.Break != nil || v.Events != writers*each {
			t.Errorf("verify = %+v (break %v)", v, v.Break)
		}
	}
}
