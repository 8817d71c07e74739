#!/usr/bin/env bash
# Builds calhook's container image from deploy/container/Containerfile:
# a static binary stamped with the version, commit and build date, staged
# with the CA certificates of this machine into a temporary build context.
# Uses podman (or buildah, or docker) and prints the image name. Layers
# are not cached: the staged context is new on every build anyway.
#   scripts/image.sh [IMAGE]   (default calhook:VERSION)
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
date=${BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
image=${1:-calhook:${version}}
certs=${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}

builder=
for b in podman buildah docker; do
	if command -v "$b" >/dev/null 2>&1; then builder=$b; break; fi
done
if [ -z "$builder" ]; then
	echo "image.sh: no podman, buildah or docker (Debian: apt-get install podman)" >&2
	exit 1
fi
if [ ! -r "$certs" ]; then
	echo "image.sh: no CA certificates at $certs (Debian: apt-get install ca-certificates)" >&2
	exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cli=github.com/calhook/calhook/internal/cli
CGO_ENABLED=0 GOOS=linux go build -trimpath -o "$ctx/calhook" \
	-ldflags "-s -w -X $cli.Version=$version -X $cli.Commit=$commit -X $cli.BuildDate=$date" ./cmd/calhook
cp deploy/container/Containerfile deploy/container/passwd deploy/container/group "$ctx/"
cp "$certs" "$ctx/ca-certificates.crt"
mkdir "$ctx/data"

args=(--build-arg "VERSION=$version" --build-arg "COMMIT=$commit" -t "$image" -f "$ctx/Containerfile")
case $builder in
podman) "$builder" build --format docker --layers=false "${args[@]}" "$ctx" >&2 ;;
buildah) "$builder" bud --format docker --layers=false "${args[@]}" "$ctx" >&2 ;;
docker) "$builder" build "${args[@]}" "$ctx" >&2 ;;
esac
echo "$image"
