.DEFAULT_GOAL := help
FUZZTIME ?= 30s

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

run: ## run calhook on 127.0.0.1:8080 with ./calhook.db
	go run ./cmd/calhook serve

test: ## set up and run the whole test suite (the README's test command)
	bash scripts/test.sh

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...

fuzz: ## run every fuzz test for FUZZTIME each
	go test -run XXX -fuzz FuzzFoldUnfold -fuzztime $(FUZZTIME) ./internal/ical
	go test -run XXX -fuzz FuzzEscapeText -fuzztime $(FUZZTIME) ./internal/ical
	go test -run XXX -fuzz FuzzEventInput -fuzztime $(FUZZTIME) ./internal/httpapi
	go test -run XXX -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./webhook

bench: ## run the benchmark scenarios against the real binary
	for s in $$(go run ./cmd/calhookbench list | awk '{print $$1}'); do go run ./cmd/calhookbench $$s || exit 1; done

bench-check: ## every scenario at a small size, against targets and bench/baseline.json
	go run ./cmd/calhookbench check

.PHONY: help run test lint fuzz bench bench-check
