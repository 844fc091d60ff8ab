#!/usr/bin/env bash
# Install the pinned Keycloak the SSO end-to-end tests run against, under
# .tools/keycloak/<version>/ in the repository root, and verify it on every
# later run. Standalone and idempotent, so scripts/tools.sh calls it on every
# `make tools`:
#
#   bash scripts/keycloak.sh           # verify; install or repair if needed
#   bash scripts/keycloak.sh --check   # verify only: exit 1, saying why, if broken
#
# What it does, once per pin:
#   1. fetches org.keycloak:keycloak-quarkus-dist:<version>:zip from Maven
#      Central with `mvn dependency:copy` (cached in ~/.m2 like any artifact)
#      and checks it against the pinned SHA-256;
#   2. unpacks it into a staging directory;
#   3. runs Keycloak's Quarkus build ("augmentation") for exactly the
#      dev-mode options the Go harness (test/keycloak) starts it with, so no
#      test ever rebuilds the shared install (that step alone takes 10-70 s on
#      a busy 2-core machine);
#   4. records the SHA-256 of every file (.tenantgate-manifest), writes a
#      marker file and swaps the staging directory into place, so an
#      interrupted install never looks finished.
#
# Every run verifies the install, not the marker alone: the marker, the
# build options Keycloak persisted (kc.db=dev-mem, kc.profile=dev), and each
# file against the manifest, no file missing or added. A broken install is
# reinstalled. The usual way to break one is to run its kc.sh: `kc.sh
# start-dev` rebuilds the install in place (kc.db=dev-file) and writes
# data/ into it; start Keycloak from a copy instead (make run-sso,
# docs/sso-keycloak.md).
#
# Keycloak 26.0.x is the last line that supports Java 17, the machine's JDK.
#
# Environment:
#   TOOLS_DIR   where tools go (default: <repo>/.tools)
#   JAVA_HOME   the JDK to build with (default: the `java` on PATH); must be
#               Java 17 or 21
#   MVN         the Maven command (default: mvn)
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS_DIR=${TOOLS_DIR:-$PWD/.tools}
MVN=${MVN:-mvn}

# The pin. Change it here (and nowhere else: the Go harness finds the newest
# installed version, or the one TENANTGATE_KEYCLOAK_HOME names) and the next
# run installs the new version beside the old one.
KEYCLOAK_VERSION=26.0.8
# SHA-256 of keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip as Maven Central
# serves it (its published SHA-1 is b67f4ec0d033ba8224cef50a22ea5db926a7cdba).
KEYCLOAK_ZIP_SHA256=d82a52098db41f036bcfe8f2ebfd9251781c8af5959af8714e8aa9b311081786

# Build-time options the harness runs with. They must match what
# test/keycloak expects (it reads them back from the built server and refuses
# an install built differently): the in-memory H2 database, dev profile.
BUILD_ARGS=(start-dev --db=dev-mem)

# The build-time properties those options persist, as the harness checks
# them (wantBuild in test/keycloak/server.go).
WANT_BUILD=(kc.db=dev-mem kc.profile=dev)

# The marker records the version and build options; an install whose marker
# differs is redone.
MARKER_TEXT="keycloak $KEYCLOAK_VERSION built with: ${BUILD_ARGS[*]}"
MARKER=.tenantgate-installed
# The manifest: "<sha256>  ./<path>" for every file but itself and the marker.
MANIFEST=.tenantgate-manifest

log() { printf 'keycloak: %s\n' "$*"; }
die() { printf 'keycloak: error: %s\n' "$*" >&2; exit 1; }

java_bin() {
  if [ -n "${JAVA_HOME:-}" ]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  else
    command -v java || true
  fi
}

# java_major prints the feature version of the given java ("17", "21", …).
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9][0-9]*\).*/\1/p' | head -n1
}

# install_files lists the files of the install in $1 that the manifest
# covers, as ./<path>, sorted.
install_files() {
  (cd "$1" && find . -type f ! -path "./$MANIFEST" ! -path "./$MARKER" -print | LC_ALL=C sort)
}

# write_manifest records the checksum of every file of the install in $1.
write_manifest() {
  local sums
  sums=$(cd "$1" && install_files . | tr '\n' '\0' | xargs -0 sha256sum) || return 1
  printf '%s\n' "$sums" >"$1/$MANIFEST"
}

# verify prints what is wrong with the install in $1, and nothing when it is
# whole: the marker, kc.sh, the persisted build options, and every file as
# the manifest recorded it, none missing and none added.
verify() {
  local dir=$1
  if [ ! -d "$dir" ]; then
    echo "not installed"
    return
  fi
  if [ ! -f "$dir/$MARKER" ]; then
    echo "no install marker (an interrupted or foreign install)"
    return
  fi
  if [ "$(cat "$dir/$MARKER")" != "$MARKER_TEXT" ]; then
    echo "installed as \"$(head -c 200 "$dir/$MARKER")\", want \"$MARKER_TEXT\""
    return
  fi
  if [ ! -x "$dir/bin/kc.sh" ]; then
    echo "no executable bin/kc.sh"
    return
  fi
  local props kv got
  if ! props=$(unzip -p "$dir/lib/quarkus/generated-bytecode.jar" META-INF/keycloak-persisted.properties 2>/dev/null); then
    echo "the server is not built (no persisted build options in lib/quarkus/generated-bytecode.jar)"
    return
  fi
  for kv in "${WANT_BUILD[@]}"; do
    if ! grep -qxF "$kv" <<<"$props"; then
      got=$(grep "^${kv%%=*}=" <<<"$props" || true)
      echo "built with ${got:-no ${kv%%=*}}, want $kv (was kc.sh run on the install? kc.sh start-dev rebuilds it in place)"
      return
    fi
  done
  if [ ! -f "$dir/$MANIFEST" ]; then
    echo "no checksum manifest (installed before installs were verified)"
    return
  fi
  local listed present
  listed=$(cut -c67- "$dir/$MANIFEST" | LC_ALL=C sort)
  present=$(install_files "$dir")
  if [ "$listed" != "$present" ]; then
    local added missing
    added=$(LC_ALL=C comm -13 <(printf '%s\n' "$listed") <(printf '%s\n' "$present") | head -n 3 | tr '\n' ' ')
    missing=$(LC_ALL=C comm -23 <(printf '%s\n' "$listed") <(printf '%s\n' "$present") | head -n 3 | tr '\n' ' ')
    echo "files changed since install:${added:+ added $added}${missing:+ missing $missing}"
    return
  fi
  local bad
  if ! bad=$(cd "$dir" && sha256sum --quiet --strict -c "$MANIFEST" 2>/dev/null); then
    echo "files differ from their checksums at install: $(head -n 3 <<<"$bad" | cut -d: -f1 | tr '\n' ' ')"
    return
  fi
}

main() {
  local check=false
  case "${1:-}" in
    --check) check=true ;;
    "") ;;
    *) die "usage: bash scripts/keycloak.sh [--check]" ;;
  esac
  local dest=$TOOLS_DIR/keycloak/$KEYCLOAK_VERSION
  local broken
  broken=$(verify "$dest")
  if [ -z "$broken" ]; then
    log "keycloak $KEYCLOAK_VERSION installed at $dest (verified: build options, checksums)"
    return 0
  fi
  if $check; then
    die "keycloak at $dest: $broken (run: make tools)"
  fi
  log "keycloak at $dest: $broken; installing"

  local java
  java=$(java_bin)
  [ -n "$java" ] && [ -x "$java" ] || die "no java found: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
  local major
  major=$(java_major "$java")
  case "$major" in
    17 | 21) ;;
    *) die "$java is Java ${major:-unknown}; Keycloak $KEYCLOAK_VERSION needs Java 17 or 21 (set JAVA_HOME)" ;;
  esac
  command -v "$MVN" >/dev/null 2>&1 || die "$MVN not found: Keycloak is fetched from Maven Central with Maven (apt-get install maven)"
  command -v unzip >/dev/null 2>&1 || die "unzip not found (apt-get install unzip)"

  mkdir -p "$TOOLS_DIR/keycloak"
  local stage=$dest.tmp.$$
  rm -rf "$stage"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/dl"

  log "fetching org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip from Maven Central"
  local start=$SECONDS
  if ! "$MVN" -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
      "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
      "-DoutputDirectory=$stage/dl" >"$stage/mvn.log" 2>&1; then
    tail -n 20 "$stage/mvn.log" >&2
    die "mvn dependency:copy of keycloak-quarkus-dist $KEYCLOAK_VERSION failed"
  fi
  local zip=$stage/dl/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip
  [ -f "$zip" ] || die "Maven did not produce $zip"
  local sum
  sum=$(sha256sum "$zip" | cut -d' ' -f1)
  [ "$sum" = "$KEYCLOAK_ZIP_SHA256" ] ||
    die "$zip has SHA-256 $sum, want the pinned $KEYCLOAK_ZIP_SHA256 (a corrupt download? remove ~/.m2/repository/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION and retry)"
  log "fetched $(du -h "$zip" | cut -f1) in $((SECONDS - start))s; unpacking"

  unzip -q "$zip" -d "$stage/unzip" || die "unzip $zip failed"
  [ -x "$stage/unzip/keycloak-$KEYCLOAK_VERSION/bin/kc.sh" ] || die "the zip has no keycloak-$KEYCLOAK_VERSION/bin/kc.sh"
  mv "$stage/unzip/keycloak-$KEYCLOAK_VERSION" "$stage/kc"

  # Build for the harness's options now: -Dkc.config.build-and-exit makes
  # kc.sh run the Quarkus build and exit instead of starting the server.
  log "building the server for: ${BUILD_ARGS[*]} (Quarkus augmentation; about a minute on 2 busy cores)"
  start=$SECONDS
  if ! JAVA=$java "$stage/kc/bin/kc.sh" "${BUILD_ARGS[@]}" -Dkc.config.build-and-exit=true >"$stage/build.log" 2>&1; then
    tail -n 30 "$stage/build.log" >&2
    die "kc.sh build failed"
  fi
  # The build leaves runtime state behind; the install stays pristine, every
  # harness run gets its own data directory.
  rm -rf "$stage/kc/data"
  log "built in $((SECONDS - start))s"

  write_manifest "$stage/kc" || die "could not record the install's checksums"
  printf '%s\n' "$MARKER_TEXT" >"$stage/kc/$MARKER"
  broken=$(verify "$stage/kc")
  [ -z "$broken" ] || die "the new install does not verify: $broken"
  rm -rf "$dest"
  mv "$stage/kc" "$dest"
  rm -rf "$stage"
  trap - EXIT
  log "keycloak $KEYCLOAK_VERSION installed at $dest (verified: build options, checksums)"
}

main "$@"
