// Package etcdcluster runs a real etcd cluster for tenantgate's tests: N
// members, each its own etcd process (the one `make tools` builds from
// tools/etcd), on free 127.0.0.1 ports, with TLS between clients and members
// and between peers, under certificates from a CA made for the test.
//
// Members are separate processes so a test can do to them what happens to a
// fleet: kill one with SIGKILL (Kill), bring it back on the same data
// directory so it rejoins and catches up (Restart), stop them all (StopAll)
// and start them again (RestartAll). Data directories and certificates live
// in the test's t.TempDir(). Every wait is bounded: a cluster that does not
// become healthy in time fails the test with the members' output.
//
// Without the etcd binary a test fails when the CI environment variable is
// set and is skipped otherwise, naming `make tools`; with -short it is
// skipped, like the other tests that start servers.
package etcdcluster
