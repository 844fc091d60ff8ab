package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// keyChecker is a store that keeps a master key check value (both
// backends do; the command line asserts it).
type keyChecker interface {
	MasterKeyCheck(ctx context.Context, sealed []byte) ([]byte, error)
}

// rotation returns a KeyRotation at now whose new keys are named kid
// (bound to the internal id they were made for), retiring older keys at
// retire.
func rotation(kid string, now, retire time.Time) tenants.KeyRotation {
	return tenants.KeyRotation{
		NewKey: func(id string) (tenants.SigningKey, error) {
			return tenants.SigningKey{KID: kid, Alg: "EdDSA", Public: []byte("public-" + kid),
				SealedPrivate: []byte("sealed-" + id + "-" + kid), Created: now}, nil
		},
		RetireAt: retire,
		Now:      now,
	}
}

// kids lists the KIDs of keys, with each one's retire time.
func kids(keys []tenants.SigningKey) string {
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s@%s ", k.KID, k.RetireAt.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// testRotateKey: a rotation puts the new key first and gives the older
// ones a retire time; a later rotation drops keys past theirs and never
// extends one; the snapshot follows.
func testRotateKey(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"), simple("globex"))
	before := mustTenant(t, st, "acme")
	first := before.Keys[0].KID
	globex := mustTenant(t, st, "globex")
	watch := st.Watch(ctx(t))

	t0 := created.Add(time.Hour)
	r1 := t0.Add(7 * 24 * time.Hour)
	key, err := st.RotateKey(ctx(t), "acme", rotation("k2", t0, r1))
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if key.KID != "k2" || string(key.SealedPrivate) != "sealed-"+before.InternalID+"-k2" {
		t.Fatalf("RotateKey returned %+v, want k2 bound to acme's internal id", key)
	}
	select {
	case <-watch:
	case <-time.After(10 * time.Second):
		t.Fatal("no Watch notification after RotateKey")
	}
	got := mustTenant(t, st, "acme")
	want := fmt.Sprintf("k2@0001-01-01T00:00:00Z %s@%s ", first, r1.Format(time.RFC3339))
	if kids(got.Keys) != want {
		t.Fatalf("keys after rotation = %s, want %s", kids(got.Keys), want)
	}
	if !reflect.DeepEqual(normKeys(got.Keys[1:2]), normKeys([]tenants.SigningKey{withRetire(before.Keys[0], r1)})) {
		t.Errorf("the old key changed beyond its retire time: %+v", got.Keys[1])
	}
	if snap := mustSnapshot(t, st).BySlug("acme"); snap == nil || kids(snap.Keys) != want {
		t.Errorf("snapshot keys = %v, want %s", snap, want)
	}
	if g := mustTenant(t, st, "globex"); !reflect.DeepEqual(normKeys(g.Keys), normKeys(globex.Keys)) {
		t.Errorf("rotating acme changed globex's keys: %s", kids(g.Keys))
	}

	// A second rotation with a later retire time does not extend k1's;
	// k2 retires at the new one.
	t1 := t0.Add(time.Hour)
	r2 := t1.Add(7 * 24 * time.Hour)
	if _, err := st.RotateKey(ctx(t), "acme", rotation("k3", t1, r2)); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("k3@0001-01-01T00:00:00Z k2@%s %s@%s ", r2.Format(time.RFC3339), first, r1.Format(time.RFC3339))
	if got := kids(mustTenant(t, st, "acme").Keys); got != want {
		t.Fatalf("keys after second rotation = %s, want %s", got, want)
	}

	// Past k1's retire time, the next rotation removes it.
	t2 := r1
	if _, err := st.RotateKey(ctx(t), "acme", rotation("k4", t2, t2.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	r3 := t2.Add(time.Hour)
	want = fmt.Sprintf("k4@0001-01-01T00:00:00Z k3@%s k2@%s ", r3.Format(time.RFC3339), r3.Format(time.RFC3339))
	if got := kids(mustTenant(t, st, "acme").Keys); got != want {
		t.Fatalf("keys after k1 expired = %s, want %s", got, want)
	}

	// Retiring at once (a compromised key) leaves only the new key.
	if _, err := st.RotateKey(ctx(t), "acme", rotation("k5", t2, t2)); err != nil {
		t.Fatal(err)
	}
	if got := kids(mustTenant(t, st, "acme").Keys); got != "k5@0001-01-01T00:00:00Z " {
		t.Fatalf("keys after an immediate retirement = %s, want k5 alone", got)
	}
}

func withRetire(k tenants.SigningKey, at time.Time) tenants.SigningKey {
	k.RetireAt = at
	return k
}

// testRotateKeyRefusals: an unknown tenant, a kid the tenant holds, a
// failing NewKey and too many keys each write nothing.
func testRotateKeyRefusals(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), simple("acme"))
	now := created.Add(time.Hour)
	if _, err := st.RotateKey(ctx(t), "nope", rotation("k2", now, now.Add(time.Hour))); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("RotateKey of a missing tenant = %v, want ErrNotFound", err)
	}
	before := kids(mustTenant(t, st, "acme").Keys)
	if _, err := st.RotateKey(ctx(t), "acme", rotation(mustTenant(t, st, "acme").Keys[0].KID, now, now.Add(time.Hour))); err == nil {
		t.Error("RotateKey with a kid the tenant holds succeeded")
	}
	boom := errors.New("boom")
	r := rotation("k2", now, now.Add(time.Hour))
	r.NewKey = func(string) (tenants.SigningKey, error) { return tenants.SigningKey{}, boom }
	if _, err := st.RotateKey(ctx(t), "acme", r); !errors.Is(err, boom) {
		t.Errorf("RotateKey with a failing NewKey = %v, want it passed on", err)
	}
	if got := kids(mustTenant(t, st, "acme").Keys); got != before {
		t.Fatalf("refused rotations changed the keys: %s, was %s", got, before)
	}
	for i := 2; i <= tenants.MaxSigningKeys; i++ {
		if _, err := st.RotateKey(ctx(t), "acme", rotation(fmt.Sprintf("k%d", i), now, now.Add(time.Hour))); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	full := kids(mustTenant(t, st, "acme").Keys)
	if _, err := st.RotateKey(ctx(t), "acme", rotation("one-too-many", now, now.Add(time.Hour))); !errors.Is(err, tenants.ErrTooManyKeys) {
		t.Fatalf("rotation past MaxSigningKeys = %v, want ErrTooManyKeys", err)
	}
	if got := kids(mustTenant(t, st, "acme").Keys); got != full {
		t.Errorf("a refused rotation changed the keys")
	}
}

// testReseal: every sealed value is replaced in one write and nothing
// else changes; a failing or overreaching callback writes nothing.
func testReseal(t *testing.T, st tenants.Store) {
	c := &crypto{}
	mustApply(t, st, c.opts(), acme(), samlTenant("globex"))
	if _, err := st.RotateKey(ctx(t), "acme", rotation("k2", created, created.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	kc, ok := st.(keyChecker)
	if !ok {
		t.Fatal("the store keeps no master key check value (MasterKeyCheck)")
	}
	if _, err := kc.MasterKeyCheck(ctx(t), []byte("check-old")); err != nil {
		t.Fatal(err)
	}
	before, err := st.Tenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	mark := func(b []byte) []byte { return append([]byte("new:"), b...) }
	reseal := tenants.Reseal{
		Tenant: func(tn *tenants.Tenant) error {
			for i := range tn.Keys {
				tn.Keys[i].SealedPrivate = mark(tn.Keys[i].SealedPrivate)
			}
			if tn.SAMLKey != nil {
				tn.SAMLKey.SealedPrivate = mark(tn.SAMLKey.SealedPrivate)
			}
			for i := range tn.Methods {
				if len(tn.Methods[i].Sealed) > 0 {
					tn.Methods[i].Sealed = mark(tn.Methods[i].Sealed)
				}
			}
			return nil
		},
		Check: func(stored []byte) ([]byte, error) {
			if string(stored) != "check-old" {
				return nil, fmt.Errorf("check value %q, want check-old", stored)
			}
			return []byte("check-new"), nil
		},
	}

	// Refusals first: nothing may change.
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		r    tenants.Reseal
	}{
		{"tenant callback fails", tenants.Reseal{Tenant: func(tn *tenants.Tenant) error {
			if tn.ID == "globex" {
				return boom
			}
			return reseal.Tenant(tn)
		}, Check: reseal.Check}},
		{"check callback fails", tenants.Reseal{Tenant: reseal.Tenant, Check: func([]byte) ([]byte, error) { return nil, boom }}},
		{"changes a public key", tenants.Reseal{Tenant: func(tn *tenants.Tenant) error {
			tn.Keys[0].Public = []byte("evil")
			return reseal.Tenant(tn)
		}, Check: reseal.Check}},
		{"changes a method", tenants.Reseal{Tenant: func(tn *tenants.Tenant) error {
			tn.Methods[0].Type = "evil"
			return reseal.Tenant(tn)
		}, Check: reseal.Check}},
		{"empties a secret", tenants.Reseal{Tenant: func(tn *tenants.Tenant) error {
			err := reseal.Tenant(tn)
			tn.Keys[0].SealedPrivate = nil
			return err
		}, Check: reseal.Check}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.Reseal(ctx(t), tc.r); err == nil {
				t.Fatal("Reseal succeeded")
			}
			after, err := st.Tenants(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normAll(after), normAll(before)) {
				t.Fatal("a refused Reseal changed the store")
			}
		})
	}
	if got, _ := kc.MasterKeyCheck(ctx(t), []byte("other")); string(got) != "check-old" {
		t.Fatalf("a refused Reseal changed the check value to %q", got)
	}

	if err := st.Reseal(ctx(t), reseal); err != nil {
		t.Fatalf("Reseal: %v", err)
	}
	after, err := st.Tenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := normAll(before)
	for i := range want {
		if err := reseal.Tenant(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(normAll(after), want) {
		t.Errorf("after Reseal:\n got %+v\nwant %+v", normAll(after), want)
	}
	if got, _ := kc.MasterKeyCheck(ctx(t), []byte("other")); string(got) != "check-new" {
		t.Errorf("check value after Reseal = %q, want check-new", got)
	}
	snap := mustSnapshot(t, st)
	if k := snap.BySlug("acme").Keys[1].SealedPrivate; !bytes.HasPrefix(k, []byte("new:")) {
		t.Errorf("snapshot still holds the old sealed key %q", k)
	}
}

func normAll(ts []tenants.Tenant) []tenants.Tenant {
	out := make([]tenants.Tenant, len(ts))
	for i, tn := range ts {
		out[i] = normTenant(tn)
		for j := range out[i].Keys {
			out[i].Keys[j].RetireAt = out[i].Keys[j].RetireAt.UTC()
		}
	}
	return out
}
