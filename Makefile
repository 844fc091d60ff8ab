# tenantgate — see README.md. Every target works from a fresh clone.
SHELL := /bin/bash
GO ?= go
# The Go toolchain every target builds and tests with: the go command fetches
# it from the module proxy on first use (about 10 s). It is newer than go.mod's
# minimum because the standard library's security fixes matter to an auth
# gateway (`make vulncheck`). GO_TOOLCHAIN=local uses the installed Go.
GO_TOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN := $(GO_TOOLCHAIN)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run run-sso test unit e2e bench check vulncheck tools clean

build: ## bin/tenantgate
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/tenantgate ./cmd/tenantgate

tools: ## install the pinned test tools (Envoy, aiosmtpd, etcd, Keycloak) under .tools/
	bash scripts/tools.sh

run: build tools ## a working demo: Envoy + tenantgate + demo upstream, two tenants on *.localhost
	bash scripts/demo.sh

run-sso: build tools ## `make run` plus Keycloak OIDC and SAML sign-in, over https with a local CA (prints the URLs and accounts)
	bash scripts/run-sso.sh

# E2E are the end-to-end packages (real Envoy, Keycloak, Chromium, etcd). test and
# unit pipe go test -json through test/testsummary, which shows what plain go
# test would and ends with how many of their tests ran, and every skipped
# test with its reason; pipefail keeps go test's exit status.
E2E := ./test ./test/browser ./test/docs ./test/fleet
SUMMARY = $(GO) run ./test/testsummary $$($(GO) list $(E2E))

test: tools ## unit, fuzz-seed, race and end-to-end tests (real Envoy)
	$(GO) vet ./...
	set -o pipefail; $(GO) test -json -race -count=1 -timeout 30m ./... | $(SUMMARY)

unit: ## the fast tests only: no Envoy, Keycloak or Chromium (-short skips the live Keycloak tests)
	set -o pipefail; $(GO) test -json -short -count=1 $$($(GO) list ./... | grep -v -e '/test$$' -e '/test/browser$$') | $(SUMMARY)

bench: build ## Check throughput vs a no-op ext_authz server (see docs/performance.md)
	bash test/bench.sh

vulncheck: ## govulncheck against a pinned snapshot of the Go vulnerability database
	bash scripts/vulncheck.sh

check: vulncheck ## gofmt, go vet, go mod tidy must change nothing; govulncheck finds nothing
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod .go.mod.bak; cp go.sum .go.sum.bak; $(GO) mod tidy; \
	if ! cmp -s go.mod .go.mod.bak || ! cmp -s go.sum .go.sum.bak; then \
	  echo "go mod tidy changes go.mod/go.sum: run it and commit the result"; diff .go.mod.bak go.mod; \
	  mv .go.mod.bak go.mod; mv .go.sum.bak go.sum; exit 1; fi; rm -f .go.mod.bak .go.sum.bak

clean:
	rm -rf bin .run
