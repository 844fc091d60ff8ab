#!/usr/bin/env bash
# `make vulncheck` (part of `make check`): govulncheck over the whole module,
# against a pinned snapshot of the Go vulnerability database, so the result
# depends only on this tree and the pins below, and the check runs on
# machines that cannot reach vuln.go.dev.
#
# The snapshot is golang.org/x/vulndb at VULNDB_VERSION, fetched from the Go
# module proxy like any module; its data/osv/*.json are indexed into a v1
# database (x/vulndb's own cmd/indexdb) under .tools/vulndb/<pin>/. Move the
# pin forward to pick up newer advisories (`go list -m -versions` does not
# list pseudo-versions; take the newest commit's pseudo-version from
# https://pkg.go.dev/golang.org/x/vulndb?tab=versions or `go list -m
# golang.org/x/vulndb@master`).
#
# Environment:
#   TOOLS_DIR          where tools go (default: <repo>/.tools)
#   TENANTGATE_VULNDB  "online" to ask vuln.go.dev instead of the snapshot
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS_DIR=${TOOLS_DIR:-$PWD/.tools}

GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

log() { printf 'vulncheck: %s\n' "$*"; }
die() { printf 'vulncheck: error: %s\n' "$*" >&2; exit 1; }

# install_govulncheck builds the pinned govulncheck with the Go in use (a
# govulncheck built by an older Go cannot load a newer standard library).
install_govulncheck() {
  local goversion bindir
  goversion=$(go env GOVERSION)
  bindir=$TOOLS_DIR/govulncheck/$GOVULNCHECK_VERSION-$goversion
  GOVULNCHECK=$bindir/govulncheck
  [ -x "$GOVULNCHECK" ] && return 0
  log "installing govulncheck $GOVULNCHECK_VERSION (built with $goversion)"
  GOBIN=$bindir go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" ||
    die "go install golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION failed"
}

# build_db indexes the pinned x/vulndb snapshot; a finished database has a
# marker, so an interrupted build is redone.
build_db() {
  DB=$TOOLS_DIR/vulndb/$VULNDB_VERSION
  [ -f "$DB/.tenantgate-built" ] && return 0
  log "building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION"
  local src stage=$DB.tmp.$$
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/data/osv" ] || die "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv"
  rm -rf "$stage"
  # GOFLAGS=-mod=mod: go run pkg@version ignores this module's go.mod.
  if ! GOFLAGS=-mod=mod go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$stage"; then
    rm -rf "$stage"
    die "indexing golang.org/x/vulndb@$VULNDB_VERSION failed"
  fi
  touch "$stage/.tenantgate-built"
  rm -rf "$DB"
  mv "$stage" "$DB"
}

main() {
  install_govulncheck
  local db_args=()
  if [ "${TENANTGATE_VULNDB:-}" = online ]; then
    log "asking vuln.go.dev"
  else
    build_db
    db_args=(-db "file://$DB")
    log "database: golang.org/x/vulndb@$VULNDB_VERSION"
  fi
  "$GOVULNCHECK" "${db_args[@]}" ./...
}

main "$@"
