#!/usr/bin/env bash
# Builds calhook's container image with podman and checks it: its size,
# user, entrypoint, health check and volume, that `calhook version` inside
# prints this commit, and, where this machine can run a container, that a
# container serves /readyz and passes its own HEALTHCHECK.
# Installs podman (and runc, used when podman's default runtime cannot
# start containers here) from Debian when missing. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> image: %s\n' "$*" >&2; }
fail() { printf '==> image: FAIL: %s\n' "$*" >&2; exit 1; }

max_bytes=$((30 * 1000 * 1000))
image=localhost/calhook:check-$$
name=calhook-check-$$
volume=calhook-check-$$
commit=$(git rev-parse HEAD)

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -r /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo -n); fi
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cleanup() {
	podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
	podman volume rm -f "$volume" >/dev/null 2>&1 || true
	podman rmi -f "$image" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The compose examples parse and use the image the way it is built.
/usr/bin/python3 - deploy/compose.yaml deploy/compose.postgres.yaml <<'PY' || fail "compose examples"
import sys, yaml
for path in sys.argv[1:]:
    services = yaml.safe_load(open(path))["services"]
    nodes = [s for s in services.values() if s["image"] == "calhook:latest"]
    assert nodes, f"{path}: no calhook service"
    for s in nodes:
        assert s["read_only"] and s["cap_drop"] == ["ALL"], f"{path}: calhook not hardened"
PY

log "building $image"
COMMIT=$commit bash scripts/image.sh "$image" >/dev/null 2>/tmp/calhook-image-build.$$ ||
	{ cat /tmp/calhook-image-build.$$ >&2; rm -f /tmp/calhook-image-build.$$; fail "build"; }
rm -f /tmp/calhook-image-build.$$

inspect() { podman image inspect --format "$1" "$image"; }
size=$(inspect '{{.Size}}')
log "size: $size bytes"
[ "$size" -lt "$max_bytes" ] || fail "image is $size bytes; want under $max_bytes"
[ "$(inspect '{{.Config.User}}')" = 65532:65532 ] || fail "user is $(inspect '{{.Config.User}}'); want 65532:65532"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/calhook"]' ] || fail "entrypoint is $(inspect '{{json .Config.Entrypoint}}')"
[ "$(inspect '{{json .Config.Cmd}}')" = '["serve"]' ] || fail "cmd is $(inspect '{{json .Config.Cmd}}')"
inspect '{{json .HealthCheck.Test}}' | grep -q '"/usr/local/bin/calhook","healthcheck"' || fail "health check is $(inspect '{{json .HealthCheck}}')"
inspect '{{json .Config.Volumes}}' | grep -q '"/data"' || fail "no /data volume: $(inspect '{{json .Config.Volumes}}')"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"8080/tcp"' || fail "port 8080 not exposed"

# Rootful podman's default runtime (crun) cannot start containers on every
# machine (cgroup v1/v2 hybrids, no CAP_SYS_RESOURCE to raise limits):
# runc with limits below the current ones can.
run_opts=()
if ! podman run --rm "$image" version >/dev/null 2>&1; then
	run_opts=(--runtime runc --ulimit "nofile=1024:1024" --ulimit "nproc=1024:1024")
fi
errfile=$(mktemp)
if out=$(podman run --rm "${run_opts[@]}" "$image" version 2>"$errfile"); then
	runs=1
else
	runs=0
	log "SKIP running containers: podman cannot start one on this machine ($(tail -1 "$errfile")); checking the binary from the image instead"
	dir=$(mktemp -d)
	cid=$(podman create "$image")
	podman cp "$cid:/usr/local/bin/calhook" "$dir/calhook"
	podman rm "$cid" >/dev/null
	out=$("$dir/calhook" version)
	rm -rf "$dir"
fi
rm -f "$errfile"
grep -qx "commit: $commit" <<<"$out" || fail "calhook version in the image printed: $out; want commit $commit"
log "calhook version in the image: $(head -1 <<<"$out"), commit $commit"

if [ "$runs" = 1 ]; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	podman volume create "$volume" >/dev/null
	# Host networking: the probe stays on loopback and needs no CNI setup.
	podman run -d "${run_opts[@]}" --name "$name" --network host -e "CALHOOK_ADDR=127.0.0.1:$port" \
		-v "$volume:/data" "$image" >/dev/null 2>&1 || fail "start a container"
	ready=0
	for _ in $(seq 50); do
		if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
			"http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
		sleep 0.2
	done
	[ "$ready" = 1 ] || { podman logs "$name" >&2; fail "the container never answered /readyz on 127.0.0.1:$port"; }
	# The image's own HEALTHCHECK, run once (podman's timers need systemd,
	# whose absence it logs).
	podman healthcheck run "$name" >/dev/null 2>&1 || { podman logs "$name" >&2; fail "podman healthcheck run"; }
	podman exec "$name" /usr/local/bin/calhook account create --name check >/dev/null ||
		fail "account create as the image's user in /data"
	log "container served /readyz on 127.0.0.1:$port, passed its HEALTHCHECK and wrote its database to /data"
fi
log "ok"
