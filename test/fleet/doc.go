// Package fleet holds the tests of tenantgate run as a fleet on etcd
// (docs/fleet.md): the etcd backend of tenants.Store against the
// conformance suite, two stores sharing one etcd as two processes do, and
// replicas of the real binary. They run a real etcd cluster of separate
// processes (test/internal/etcdcluster), which is why they live under
// test/: the harness is internal to it.
package fleet
