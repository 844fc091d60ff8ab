package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// sessionFixture is two tenants and the internal ids the session tests use.
type sessionFixture struct {
	acme, globex string
	now          time.Time
}

func newSessionFixture(t *testing.T, st tenants.Store) sessionFixture {
	t.Helper()
	mustApply(t, st, (&crypto{}).opts(), simple("acme"), simple("globex"))
	return sessionFixture{
		acme:   mustTenant(t, st, "acme").InternalID,
		globex: mustTenant(t, st, "globex").InternalID,
		now:    time.Now().UTC().Truncate(time.Second),
	}
}

// session is a session of user in tenant issued ago before the fixture's
// now, lasting an hour.
func (f sessionFixture) session(tenant, user, sid string, ago time.Duration) tenants.Session {
	issued := f.now.Add(-ago)
	return tenants.Session{TenantInternalID: tenant, UserID: user, SID: sid, Issued: issued, Expires: issued.Add(time.Hour),
		Device: "Firefox on Linux", Address: "192.0.2.1", Method: "password"}
}

// evict is the revocation the tests pass for evicted sessions.
func (f sessionFixture) evict() tenants.Revocation {
	return tenants.Revocation{NotBefore: f.now, Expires: f.now.Add(2 * time.Hour)}
}

func mustRecord(t *testing.T, st tenants.Store, f sessionFixture, s tenants.Session) {
	t.Helper()
	if err := st.RecordSession(ctx(t), s, f.evict()); err != nil {
		t.Fatalf("RecordSession(%s): %v", s.SID, err)
	}
}

// sids lists the sids of a person's recorded sessions, as Sessions orders
// them.
func sids(t *testing.T, st tenants.Store, tenant, user string) []string {
	t.Helper()
	got, err := st.Sessions(ctx(t), tenant, user)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	out := []string{}
	for _, s := range got {
		out = append(out, s.SID)
	}
	return out
}

func testSessionsRecorded(t *testing.T, st tenants.Store) {
	f := newSessionFixture(t, st)
	if got := sids(t, st, f.acme, "alice"); len(got) != 0 {
		t.Fatalf("a new store lists sessions %v", got)
	}
	older := f.session(f.acme, "alice", "s-old", 10*time.Minute)
	newer := f.session(f.acme, "alice", "s-new", time.Minute)
	newer.Device, newer.Address, newer.Method = "Safari on iOS", "2001:db8::1", "oidc"
	for _, s := range []tenants.Session{older, newer,
		f.session(f.globex, "alice", "s-globex", 0), f.session(f.acme, "bob", "s-bob", 0)} {
		mustRecord(t, st, f, s)
	}
	got, err := st.Sessions(ctx(t), f.acme, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Sessions(acme, alice) = %v, want her two acme sessions", got)
	}
	for i, want := range []tenants.Session{newer, older} {
		g := got[i]
		if g.TenantInternalID != want.TenantInternalID || g.UserID != want.UserID || g.SID != want.SID ||
			!g.Issued.Equal(want.Issued) || !g.Expires.Equal(want.Expires) ||
			g.Device != want.Device || g.Address != want.Address || g.Method != want.Method {
			t.Errorf("Sessions[%d] = %+v, want %+v (newest first, every field kept)", i, g, want)
		}
	}
	if got := sids(t, st, f.globex, "alice"); strings.Join(got, ",") != "s-globex" {
		t.Errorf("Sessions(globex, alice) = %v: sessions are per tenant", got)
	}
	// The same sid again replaces its record.
	again := newer
	again.Device = "Chrome on Android"
	mustRecord(t, st, f, again)
	got, err = st.Sessions(ctx(t), f.acme, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Device != "Chrome on Android" {
		t.Errorf("after recording s-new again: %+v, want it replaced", got)
	}
	// Recording revokes nothing.
	snap := mustSnapshot(t, st)
	for _, sid := range []string{"s-old", "s-new", "s-globex", "s-bob"} {
		if snap.Revoked(f.acme, "alice", sid, f.now) {
			t.Errorf("recording sessions revoked %s", sid)
		}
	}
}

func testSessionsRefused(t *testing.T, st tenants.Store) {
	f := newSessionFixture(t, st)
	good := f.session(f.acme, "alice", "s1", 0)
	long := strings.Repeat("x", tenants.MaxSessionFieldLen+1)
	for _, tc := range []struct {
		name   string
		change func(s *tenants.Session)
	}{
		{"no tenant", func(s *tenants.Session) { s.TenantInternalID = "" }},
		{"no user", func(s *tenants.Session) { s.UserID = "" }},
		{"no sid", func(s *tenants.Session) { s.SID = "" }},
		{"no device", func(s *tenants.Session) { s.Device = "" }},
		{"no address", func(s *tenants.Session) { s.Address = "" }},
		{"no method", func(s *tenants.Session) { s.Method = "" }},
		{"slash in user", func(s *tenants.Session) { s.UserID = "bob/s-bob" }},
		{"slash in sid", func(s *tenants.Session) { s.SID = "a/b" }},
		{"long device", func(s *tenants.Session) { s.Device = long }},
		{"long sid", func(s *tenants.Session) { s.SID = long }},
		{"expires before issued", func(s *tenants.Session) { s.Expires = s.Issued.Add(-time.Second) }},
		{"no issue time", func(s *tenants.Session) { s.Issued = time.Time{} }},
	} {
		s := good
		tc.change(&s)
		if err := st.RecordSession(ctx(t), s, f.evict()); err == nil {
			t.Errorf("%s: RecordSession succeeded", tc.name)
		}
	}
	if got := sids(t, st, f.acme, "alice"); len(got) != 0 {
		t.Errorf("refused sessions were recorded: %v", got)
	}
}

// testSessionsExpired: a record is listed only until its session expires,
// and an expired one does not count towards the cap. (That the records
// themselves go is each backend's own test: a lease in etcd, pruning in
// bbolt.)
func testSessionsExpired(t *testing.T, st tenants.Store) {
	f := newSessionFixture(t, st)
	gone := f.session(f.acme, "alice", "s-gone", 2*time.Hour) // expired an hour ago
	mustRecord(t, st, f, gone)
	mustRecord(t, st, f, f.session(f.acme, "alice", "s-live", 0))
	if got := sids(t, st, f.acme, "alice"); strings.Join(got, ",") != "s-live" {
		t.Errorf("Sessions = %v, want only the live session", got)
	}
	for i := range tenants.MaxSessionsPerUser - 1 {
		mustRecord(t, st, f, f.session(f.acme, "alice", fmt.Sprintf("s%02d", i), time.Duration(i+1)*time.Second))
	}
	if got := sids(t, st, f.acme, "alice"); len(got) != tenants.MaxSessionsPerUser {
		t.Errorf("%d sessions listed, want %d: an expired record took a place", len(got), tenants.MaxSessionsPerUser)
	}
	if mustSnapshot(t, st).Revoked(f.acme, "alice", "s-live", f.now) {
		t.Error("a live session was evicted while an expired record was held")
	}
}

// testSessionsCapped: past MaxSessionsPerUser, the oldest sessions are
// dropped and revoked; other people's are untouched.
func testSessionsCapped(t *testing.T, st tenants.Store) {
	f := newSessionFixture(t, st)
	mustRecord(t, st, f, f.session(f.acme, "bob", "s-bob", time.Minute))
	total := tenants.MaxSessionsPerUser + 2
	for i := range total {
		// s00 is the oldest.
		mustRecord(t, st, f, f.session(f.acme, "alice", fmt.Sprintf("s%02d", i), time.Duration(total-i)*time.Second))
	}
	got := sids(t, st, f.acme, "alice")
	if len(got) != tenants.MaxSessionsPerUser || got[0] != fmt.Sprintf("s%02d", total-1) || got[len(got)-1] != "s02" {
		t.Fatalf("Sessions = %v, want the %d newest, newest first", got, tenants.MaxSessionsPerUser)
	}
	snap := mustSnapshot(t, st)
	for _, sid := range []string{"s00", "s01"} {
		if !snap.Revoked(f.acme, "alice", sid, f.now) {
			t.Errorf("evicted session %s is not revoked: its holder could no longer see it", sid)
		}
	}
	if snap.Revoked(f.acme, "alice", "s02", f.now) || snap.Revoked(f.acme, "bob", "s-bob", f.now) {
		t.Error("a session within the cap was revoked")
	}
	if got := sids(t, st, f.acme, "bob"); len(got) != 1 {
		t.Errorf("bob's sessions = %v, want his one", got)
	}
}

// testRevokeSession: a person revokes their own session by its sid, and
// only their own: the same sid named for another person or another tenant
// is ErrNotFound, with nothing written.
func testRevokeSession(t *testing.T, st tenants.Store) {
	f := newSessionFixture(t, st)
	for _, s := range []tenants.Session{
		f.session(f.acme, "alice", "s-a1", time.Minute), f.session(f.acme, "alice", "s-a2", 0),
		f.session(f.acme, "bob", "s-bob", 0), f.session(f.globex, "carol", "s-carol", 0),
	} {
		mustRecord(t, st, f, s)
	}
	rev := tenants.Revocation{NotBefore: f.now, Expires: f.now.Add(2 * time.Hour)}
	for _, tc := range []struct{ name, tenant, user, sid string }{
		{"another person's session", f.acme, "alice", "s-bob"},
		{"another tenant's session", f.acme, "alice", "s-carol"},
		{"own session named in another tenant", f.globex, "alice", "s-a1"},
		{"no such session", f.acme, "alice", "s-none"},
		{"empty sid", f.acme, "alice", ""},
		{"empty user", f.acme, "", "s-a1"},
	} {
		wantErrIs(t, st.RevokeSession(ctx(t), tc.tenant, tc.user, tc.sid, rev), tenants.ErrNotFound, tc.name)
	}
	snap := mustSnapshot(t, st)
	for _, sid := range []string{"s-a1", "s-a2", "s-bob", "s-carol"} {
		if snap.Revoked("", "", sid, f.now) {
			t.Errorf("a refused RevokeSession revoked %s", sid)
		}
	}
	if err := st.RevokeSession(ctx(t), f.acme, "alice", "s-a1", rev); err != nil {
		t.Fatalf("RevokeSession of her own session: %v", err)
	}
	snap = mustSnapshot(t, st)
	if !snap.Revoked(f.acme, "alice", "s-a1", f.now) {
		t.Error("the revoked session is not revoked in the next snapshot")
	}
	if snap.Revoked(f.acme, "alice", "s-a2", f.now) {
		t.Error("her other session was revoked too")
	}
	if got := sids(t, st, f.acme, "alice"); strings.Join(got, ",") != "s-a2" {
		t.Errorf("after revoking s-a1: Sessions = %v, want s-a2", got)
	}
	wantErrIs(t, st.RevokeSession(ctx(t), f.acme, "alice", "s-a1", rev), tenants.ErrNotFound, "revoking it twice")
}

// testSessionsDeletedWithTenant: a deleted tenant's records go with it.
func testSessionsDeletedWithTenant(t *testing.T, st tenants.Store) {
	f := newSessionFixture(t, st)
	mustRecord(t, st, f, f.session(f.acme, "alice", "s-a", 0))
	mustRecord(t, st, f, f.session(f.globex, "alice", "s-g", 0))
	if err := st.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if got := sids(t, st, f.acme, "alice"); len(got) != 0 {
		t.Errorf("the deleted tenant's sessions are still listed: %v", got)
	}
	if got := sids(t, st, f.globex, "alice"); len(got) != 1 {
		t.Errorf("another tenant's sessions went with it: %v", got)
	}
}
