package etcdstore

import (
	"strings"
	"testing"
)

// TestOpenRefusesNoEndpoints: Open without endpoints is an error before
// any connection is tried. (The store itself runs against a real etcd in
// test/fleet, where the cluster harness lives.)
func TestOpenRefusesNoEndpoints(t *testing.T) {
	if st, err := Open(Options{}); err == nil || !strings.Contains(err.Error(), "no endpoints") {
		if st != nil {
			st.Close()
		}
		t.Errorf("Open(no endpoints) = %v, want an error saying so", err)
	}
}

// TestKeys: every record lives under the prefix, in the namespace named
// like bbolt's bucket, and split undoes key.
func TestKeys(t *testing.T) {
	s := &Store{prefix: "/tg/"}
	for _, tc := range []struct{ ns, name, key string }{
		{nsTenants, "acme", "/tg/tenants/acme"},
		{nsMemberships, "t1/u1", "/tg/memberships/t1/u1"},
		{nsRevocations, "user:t1:u1", "/tg/revocations/user:t1:u1"},
		{nsAssertions, "t1/tg-switch/abc", "/tg/assertions/t1/tg-switch/abc"},
	} {
		if got := s.key(tc.ns, tc.name); got != tc.key {
			t.Errorf("key(%s, %s) = %s, want %s", tc.ns, tc.name, got, tc.key)
		}
		ns, name, ok := s.split([]byte(tc.key))
		if !ok || ns != tc.ns || name != tc.name {
			t.Errorf("split(%s) = %s, %s, %v", tc.key, ns, name, ok)
		}
	}
	if _, _, ok := s.split([]byte("/other/tenants/acme")); ok {
		t.Error("split accepted a key outside the prefix")
	}
}
