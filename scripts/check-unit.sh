#!/usr/bin/env bash
# Checks deploy/calhook.service with systemd-analyze: `verify` (syntax,
# directives, the ExecStart binary; run on a copy that points at a freshly
# built calhook) and `security --offline`, whose exposure score must stay
# under 2.0. Installs Debian's systemd package when systemd-analyze is
# missing. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> unit: %s\n' "$*" >&2; }
fail() { printf '==> unit: FAIL: %s\n' "$*" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
	log "installing Debian packages: systemd"
	if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo -n); fi
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -o "$dir/calhook" ./cmd/calhook
sed "s|^ExecStart=/usr/bin/calhook |ExecStart=$dir/calhook |" deploy/calhook.service >"$dir/calhook.service"
grep -q "^ExecStart=$dir/calhook serve" "$dir/calhook.service" || fail "ExecStart is not /usr/bin/calhook serve"
out=$(systemd-analyze verify "$dir/calhook.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
log "systemd-analyze verify: clean"

for want in Type=notify WatchdogSec= DynamicUser=yes StateDirectory=calhook ProtectSystem=strict; do
	grep -q "^$want" deploy/calhook.service || fail "deploy/calhook.service lacks $want"
done
report=$(systemd-analyze security --offline=true --no-pager deploy/calhook.service 2>&1) || fail "systemd-analyze security: $report"
score=$(sed -n 's/.*Overall exposure level for calhook.service: \([0-9.]*\).*/\1/p' <<<"$report")
[ -n "$score" ] || fail "no exposure score in: $report"
log "systemd-analyze security exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || fail "exposure $score; want under 2.0"
log "ok"
