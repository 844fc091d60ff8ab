#!/usr/bin/env bash
# Install the pinned Keycloak the SSO end-to-end tests run against, under
# .tools/keycloak/<version>/ in the repository root. Standalone and
# idempotent: a second run with the same pin is a no-op that takes well under
# a second, so scripts/tools.sh can call it on every `make tools`:
#
#   bash scripts/keycloak.sh
#
# What it does, once per pin:
#   1. fetches org.keycloak:keycloak-quarkus-dist:<version>:zip from Maven
#      Central with `mvn dependency:copy` (cached in ~/.m2 like any artifact);
#   2. unpacks it into a staging directory;
#   3. runs Keycloak's Quarkus build ("augmentation") for exactly the
#      dev-mode options the Go harness (test/keycloak) starts it with, so no
#      test ever rebuilds the shared install (that step alone takes 10-70 s on
#      a busy 2-core machine);
#   4. writes a marker file and swaps the staging directory into place, so an
#      interrupted install never looks finished.
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

# Build-time options the harness runs with. They must match what
# test/keycloak expects (it reads them back from the built server and refuses
# an install built differently): the in-memory H2 database, dev profile.
BUILD_ARGS=(start-dev --db=dev-mem)

# The marker records the version and build options; an install whose marker
# differs is redone.
MARKER_TEXT="keycloak $KEYCLOAK_VERSION built with: ${BUILD_ARGS[*]}"

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

main() {
  local dest=$TOOLS_DIR/keycloak/$KEYCLOAK_VERSION
  local marker=$dest/.tenantgate-installed
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$MARKER_TEXT" ] && [ -x "$dest/bin/kc.sh" ]; then
    log "keycloak $KEYCLOAK_VERSION already installed at $dest"
    return 0
  fi

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

  printf '%s\n' "$MARKER_TEXT" >"$stage/kc/.tenantgate-installed"
  rm -rf "$dest"
  mv "$stage/kc" "$dest"
  rm -rf "$stage"
  trap - EXIT
  log "keycloak $KEYCLOAK_VERSION installed at $dest"
}

main "$@"
