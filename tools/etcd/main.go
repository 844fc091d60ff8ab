// Command etcd is the etcd server the end-to-end tests run as separate
// processes: upstream's own main, etcdmain.Main, built at the version pinned
// in this directory's go.mod by `make tools` (scripts/tools.sh). It lives in
// a module of its own because `go install go.etcd.io/etcd/server/v3@…` is
// refused (its go.mod has replace directives) and so that etcd's server
// dependencies stay out of tenantgate's go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
