#!/usr/bin/env bash
# Runs calhook's whole test suite, first installing what the
# interoperability tests need:
#   - Node.js with the npm packages pinned in test/*/package-lock.json
#     (ical.js, Mozilla's iCalendar parser; svix, the webhook verifier);
#   - Debian's python3-icalendar, run by /usr/bin/python3;
#   - Debian's nginx-light and wrk, the feed benchmark's peer and load
#     generator, for the bench-check that ends the run;
#   - Debian's chromium and axe-core (test/console/package-lock.json), for
#     the console's browser test;
#   - Debian's prometheus, for promtool, which checks and unit-tests the
#     alert rules under deploy/prometheus;
#   - golangci-lint at GOLANGCI_LINT_VERSION (go install), run before the
#     tests with the repository's .golangci.yml.
# Debian packages are installed only when missing (as root, or with sudo).
# Extra arguments go to `go test`, e.g. scripts/test.sh -run Feed ./internal/...
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# The golangci-lint release the configuration is written for.
GOLANGCI_LINT_VERSION=v2.15.0

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
	else
		log "cannot install Debian packages (not root, no sudo): $*"
		return 1
	fi
}

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
/usr/bin/python3 -c 'import icalendar' >/dev/null 2>&1 || missing+=(python3-icalendar)
# The feed benchmark's peer and load generator, for bench-check.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# The console's browser test drives Debian's chromium.
[ -x /usr/bin/chromium ] || missing+=(chromium)
# promtool checks the alert rules; Debian ships it in prometheus.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for dir in test/interop test/webhooks test/console; do
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		log "installing npm packages from $dir/package-lock.json"
		npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
	fi
done

log "checking formatting and vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/interop/node_modules/*'))
if [ -n "$unformatted" ]; then
	log "gofmt would change: $unformatted"
	exit 1
fi
go vet ./...

gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
lint="$gobin/golangci-lint"
if ! "$lint" version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then
	log "installing golangci-lint $GOLANGCI_LINT_VERSION"
	go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi
log "running golangci-lint"
"$lint" run ./...

log "running go test"
if [ $# -gt 0 ]; then
	go test -race -count=1 "$@"
	exit
fi
go test -race -count=1 ./...
# The store conformance suite runs against PostgreSQL inside ./... when
# CALHOOK_TEST_POSTGRES is set; the HTTP API tests run once more on it, and
# the 3-node cluster test (about two minutes) runs on its own, so that no
# other package's tests compete with the rate limit it times.
if [ -n "${CALHOOK_TEST_POSTGRES:-}" ]; then
	log "running the HTTP API tests against PostgreSQL"
	CALHOOK_TEST_BACKEND=postgres go test -race -count=1 ./internal/httpapi/
	log "running the 3-node cluster test on PostgreSQL"
	CALHOOK_TEST_CLUSTER=1 go test -count=1 -run '^TestCluster$' ./internal/e2e/
fi
# Every benchmark scenario at a small size: fails only on a gross fall
# (3x its target or bench/baseline.json, confirmed by a second run).
log "running bench-check (gross falls only)"
go run ./cmd/calhookbench check -fail gross

# Deployment artefacts: the container image (built and, where podman can
# run containers here, started), the systemd unit and the alert rules (the
# metric names they and the Grafana dashboard use are checked against a
# running calhook by TestMonitoringNamesExist).
bash scripts/check-image.sh
bash scripts/check-unit.sh
log "checking the Prometheus alert rules"
promtool check rules deploy/prometheus/calhook.rules.yml
promtool test rules deploy/prometheus/calhook.rules.test.yml
# GoReleaser is not installed here: building it (over 300 modules) took
# over an hour on a loaded 2-core machine. `make release-tools` installs the
# pinned one into GOBIN, where this finds it.
goreleaser=$gobin/goreleaser
[ -x "$goreleaser" ] || goreleaser=$(command -v goreleaser || true)
if [ -n "$goreleaser" ]; then
	log "checking .goreleaser.yaml with $goreleaser"
	"$goreleaser" check
else
	log "SKIP goreleaser check: no goreleaser in $gobin or PATH (make release-tools installs the pinned v2.17.0)"
fi
