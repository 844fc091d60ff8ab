package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// errStepUsed is what the tests' TOTP update returns for a step at or
// before the stored one.
var errStepUsed = errors.New("step used")

// useStep is the update a TOTP sign-in makes: the step is accepted only
// when it is later than the stored one.
func useStep(step int64) func(*tenants.SecondFactors) error {
	return func(f *tenants.SecondFactors) error {
		if step <= f.TOTPStep {
			return errStepUsed
		}
		f.TOTPStep = step
		return nil
	}
}

// testSecondFactors: factors belong to one membership, survive a change
// of its roles, are written all or nothing, and go with the membership.
func testSecondFactors(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	acme, globex := mustTenant(t, st, "acme"), mustTenant(t, st, "globex")
	for _, id := range []string{"acme", "globex"} {
		mustAddMember(t, st, id, tenants.NewMember{Email: "alice@example.com", Roles: []string{"member"}, PasswordHash: "h"})
	}
	u := mustUser(t, st, "alice@example.com")

	if f, err := st.SecondFactors(ctx(t), acme.InternalID, u.ID); err != nil || f.Enrolled() || f.TOTPStep != 0 {
		t.Fatalf("factors of a new member = %+v, %v", f, err)
	}
	enrolled := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	err := st.UpdateSecondFactors(ctx(t), acme.InternalID, u.ID, func(f *tenants.SecondFactors) error {
		f.TOTP, f.TOTPStep, f.TOTPEnrolled, f.RecoveryCodes = []byte("sealed"), 100, enrolled, []string{"h1", "h2"}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateSecondFactors: %v", err)
	}
	// A change of roles keeps them.
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "alice@example.com", Roles: []string{"admin"}})
	f, err := st.SecondFactors(ctx(t), acme.InternalID, u.ID)
	if err != nil || string(f.TOTP) != "sealed" || f.TOTPStep != 100 || !f.TOTPEnrolled.Equal(enrolled) || !slices.Equal(f.RecoveryCodes, []string{"h1", "h2"}) {
		t.Fatalf("factors after a role change = %+v, %v", f, err)
	}
	if roles, _ := st.Membership(ctx(t), acme.InternalID, u.ID); !slices.Equal(roles, []string{"admin"}) {
		t.Errorf("roles = %v, want [admin]", roles)
	}
	// Another tenant's membership has none.
	if g, err := st.SecondFactors(ctx(t), globex.InternalID, u.ID); err != nil || g.Enrolled() {
		t.Errorf("globex factors = %+v, %v", g, err)
	}

	// fn's error writes nothing and comes back as is.
	wantErrIs(t, st.UpdateSecondFactors(ctx(t), acme.InternalID, u.ID, func(f *tenants.SecondFactors) error {
		f.TOTP = nil
		return useStep(100)(f)
	}), errStepUsed, "spending the step already used")
	if f, _ := st.SecondFactors(ctx(t), acme.InternalID, u.ID); !f.Enrolled() {
		t.Fatal("a refused update was written")
	}
	if err := st.UpdateSecondFactors(ctx(t), acme.InternalID, u.ID, useStep(101)); err != nil {
		t.Fatalf("spending a later step: %v", err)
	}
	// Cleared: nothing left.
	if err := st.UpdateSecondFactors(ctx(t), acme.InternalID, u.ID, func(f *tenants.SecondFactors) error {
		*f = tenants.SecondFactors{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if f, _ := st.SecondFactors(ctx(t), acme.InternalID, u.ID); f.Enrolled() || f.TOTPStep != 0 || len(f.RecoveryCodes) != 0 {
		t.Errorf("factors after a reset = %+v", f)
	}

	// They go with the membership, and a new membership starts with none.
	if err := st.UpdateSecondFactors(ctx(t), acme.InternalID, u.ID, func(f *tenants.SecondFactors) error {
		f.TOTP = []byte("sealed")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveMember(ctx(t), "acme", "alice@example.com", tenants.Revocation{Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err = st.SecondFactors(ctx(t), acme.InternalID, u.ID)
	wantErrIs(t, err, tenants.ErrNotFound, "factors of a removed membership")
	wantErrIs(t, st.UpdateSecondFactors(ctx(t), acme.InternalID, u.ID, useStep(1)), tenants.ErrNotFound, "updating a removed membership")
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "alice@example.com"})
	if f, _ := st.SecondFactors(ctx(t), acme.InternalID, u.ID); f.Enrolled() {
		t.Error("a membership added back has the factors of the removed one")
	}
}

// testSharedSecondFactors: a TOTP step spent at once at both processes is
// accepted once.
func testSharedSecondFactors(t *testing.T, a, b tenants.Store) {
	mustApply(t, a, (&crypto{}).opts(), simple("acme"))
	acme := mustTenant(t, a, "acme").InternalID
	mustAddMember(t, a, "acme", tenants.NewMember{Email: "ann@example.com", PasswordHash: "h"})
	u := mustUser(t, a, "ann@example.com")
	for _, step := range []int64{10, 11} {
		errs := race(8, a, b, func(_ int, st tenants.Store) error {
			return st.UpdateSecondFactors(ctx(t), acme, u.ID, useStep(step))
		})
		oneWinner(t, errs, errStepUsed, "spending one TOTP step at once")
	}
	if f, err := b.SecondFactors(ctx(t), acme, u.ID); err != nil || f.TOTPStep != 11 {
		t.Errorf("step after the races = %d, %v", f.TOTPStep, err)
	}
}

// testResealFactors: a master key rotation reseals every member's TOTP
// secret in the same write as the tenants, with the membership named; a
// store holding one and no Reseal.Factor, or a Factor that fails,
// changes nothing.
func testResealFactors(t *testing.T, st tenants.Store) {
	mustApply(t, st, (&crypto{}).opts(), simple("acme"))
	acme := mustTenant(t, st, "acme").InternalID
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "ann@example.com", PasswordHash: "h"})
	mustAddMember(t, st, "acme", tenants.NewMember{Email: "bob@example.com", PasswordHash: "h"})
	ann := mustUser(t, st, "ann@example.com")
	if err := st.UpdateSecondFactors(ctx(t), acme, ann.ID, func(f *tenants.SecondFactors) error {
		f.TOTP, f.TOTPStep = []byte("sealed-1"), 7
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keep := func(*tenants.Tenant) error { return nil }
	check := func([]byte) ([]byte, error) { return []byte("check"), nil }
	for name, factor := range map[string]func(string, string, []byte) ([]byte, error){
		"no Factor":      nil,
		"Factor fails":   func(string, string, []byte) ([]byte, error) { return nil, errors.New("boom") },
		"Factor empties": func(string, string, []byte) ([]byte, error) { return nil, nil },
	} {
		if err := st.Reseal(ctx(t), tenants.Reseal{Tenant: keep, Check: check, Factor: factor}); err == nil {
			t.Errorf("%s: Reseal succeeded", name)
		}
		if f, _ := st.SecondFactors(ctx(t), acme, ann.ID); string(f.TOTP) != "sealed-1" {
			t.Errorf("%s: secret now %q", name, f.TOTP)
		}
	}
	var seen []string
	err := st.Reseal(ctx(t), tenants.Reseal{Tenant: keep, Check: check, Factor: func(tid, uid string, sealed []byte) ([]byte, error) {
		seen = append(seen, tid+"/"+uid)
		return append([]byte("new:"), sealed...), nil
	}})
	if err != nil {
		t.Fatalf("Reseal: %v", err)
	}
	f, _ := st.SecondFactors(ctx(t), acme, ann.ID)
	if string(f.TOTP) != "new:sealed-1" || f.TOTPStep != 7 {
		t.Errorf("after Reseal: %q step %d", f.TOTP, f.TOTPStep)
	}
	if want := acme + "/" + ann.ID; !slices.Contains(seen, want) {
		t.Errorf("Factor called for %v, want %s", seen, want)
	}
}
