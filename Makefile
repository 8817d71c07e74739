.DEFAULT_GOAL := help
FUZZTIME ?= 30s

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
CLI := github.com/calhook/calhook/internal/cli
# Release tools, pinned and installed into GOBIN by go install when
# missing or at another version: GoReleaser (v2.17.0 is the newest that
# builds with Go 1.26) and syft, which GoReleaser runs offline for the SBOMs.
GOBIN := $(or $(shell go env GOBIN),$(shell go env GOPATH)/bin)
GORELEASER_VERSION := v2.17.0
SYFT_VERSION := v1.57.2
GORELEASER ?= $(GOBIN)/goreleaser
# GoReleaser replaces the whole git state with "none" (commit, short
# commit, commit time) when any git call fails, and `git ls-remote
# --get-url` fails in a checkout without a remote (a worktree, or a
# repository made with git init). The snapshot then names its files
# "…+none" and its binaries say "commit: none". Such a checkout is given
# itself as origin through git's environment (GIT_CONFIG_*), leaving the
# repository untouched; a clone with a remote is run as it is.
RELEASE_GIT_ENV = $(if $(shell git ls-remote --get-url 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=$(CURDIR))
LDFLAGS := -s -w -X $(CLI).Version=$(VERSION) -X $(CLI).Commit=$(COMMIT) -X $(CLI).BuildDate=$(BUILD_DATE)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

build: ## build a static ./calhook stamped with version, commit and date
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o calhook ./cmd/calhook

image: ## build the container image IMAGE (default calhook:VERSION) with podman
	VERSION=$(VERSION) COMMIT=$(COMMIT) BUILD_DATE=$(BUILD_DATE) bash scripts/image.sh $(IMAGE)

release-snapshot: release-tools ## build every release artifact and its SBOM locally into dist/ (GoReleaser, no publishing)
	$(RELEASE_GIT_ENV) PATH="$(GOBIN):$$PATH" $(GORELEASER) release --snapshot --clean

release-check: release-tools ## validate .goreleaser.yaml and check the artifacts release-snapshot left in dist/
	$(GORELEASER) check
	bash scripts/release-check.sh dist

# go version -m names the module version a binary was built from.
release-tools: ## install the pinned GoReleaser and syft into GOBIN when missing
	@go version -m $(GOBIN)/goreleaser 2>/dev/null | grep -Eq '^\s+mod\s+github.com/goreleaser/goreleaser/v2\s+$(GORELEASER_VERSION)\s' || \
		go install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)
	@go version -m $(GOBIN)/syft 2>/dev/null | grep -Eq '^\s+mod\s+github.com/anchore/syft\s+$(SYFT_VERSION)\s' || \
		go install github.com/anchore/syft/cmd/syft@$(SYFT_VERSION)

run: ## run calhook on 127.0.0.1:8080 with ./calhook.db
	go run ./cmd/calhook serve

test: ## set up and run the whole test suite (the README's test command)
	bash scripts/test.sh

lint: ## gofmt, go vet and golangci-lint (scripts/test.sh installs the pinned version)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...
	golangci-lint run ./...

fuzz: ## run every fuzz test for FUZZTIME each
	go test -run XXX -fuzz FuzzFoldUnfold -fuzztime $(FUZZTIME) ./internal/ical
	go test -run XXX -fuzz FuzzEscapeText -fuzztime $(FUZZTIME) ./internal/ical
	go test -run XXX -fuzz FuzzEventInput -fuzztime $(FUZZTIME) ./internal/httpapi
	go test -run XXX -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./webhook

screenshots: ## regenerate docs/screenshots/*.png with the console's browser test (needs chromium and test/console's npm packages)
	CALHOOK_SCREENSHOTS=$(CURDIR)/docs/screenshots go test -count=1 -run TestConsoleInBrowser ./internal/e2e

bench-console: ## page render benchmarks: a calendar of 10,000 events, a message log of 100,000 messages
	go test -run XXX -bench . -benchtime 200x ./internal/console

bench: ## run the benchmark scenarios against the real binary
	for s in $$(go run ./cmd/calhookbench list | awk '{print $$1}'); do go run ./cmd/calhookbench $$s || exit 1; done

bench-check: ## every scenario at a small size, against targets and bench/baseline.json
	go run ./cmd/calhookbench check

.PHONY: help build image release-snapshot release-check release-tools run test lint fuzz screenshots bench-console bench bench-check
