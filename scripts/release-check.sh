#!/usr/bin/env bash
# Checks the artifacts `make release-snapshot` (GoReleaser) left in a dist
# directory: the archive of every platform with its files and SBOM, the
# checksums, the deb and rpm packages with the unit, the config and the
# maintainer scripts, static binaries stamped with the version, the commit
# and the build date. Run by `make release-check`, not by the test
# script: the snapshot takes minutes.
#
#   bash scripts/release-check.sh [DIST]    # DIST defaults to dist
#
# Needs jq, dpkg-deb (dpkg) and rpm (Debian's rpm package); prints the
# artifacts with their sizes and exits non-zero on the first problem.
set -euo pipefail

dist=${1:-dist}
fail() { echo "release-check: $*" >&2; exit 1; }

[[ -f $dist/metadata.json && -f $dist/artifacts.json ]] ||
	fail "$dist/metadata.json or artifacts.json missing: run make release-snapshot first"
for tool in jq dpkg-deb rpm go; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install jq dpkg rpm)"
done

version=$(jq -r .version "$dist/metadata.json")
commit=$(jq -r .commit "$dist/metadata.json")
[[ $commit =~ ^[0-9a-f]{40}$ ]] || fail "metadata commit is \"$commit\", not a git commit"
[[ $version == *"+${commit:0:7}" ]] || fail "version $version does not end in the short commit ${commit:0:7}"
if head=$(git rev-parse HEAD 2>/dev/null) && [[ $head != "$commit" ]]; then
	echo "release-check: note: $dist was built from $commit, HEAD is $head" >&2
fi
echo "version $version, commit $commit"

# has LISTING PATH: the listing (one path per line) contains PATH.
has() { grep -qxF -- "$2" <<<"$1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Archives: one per platform, with the binary, README and deployment
# files, and an SPDX SBOM naming calhook's dependencies.
for os in linux darwin; do
	for arch in amd64 arm64; do
		a=$dist/calhook_${version}_${os}_${arch}.tar.gz
		[[ -f $a ]] || fail "missing archive $a"
		list=$(tar -tzf "$a")
		for f in calhook README.md deploy/calhook.service deploy/calhook.env deploy/compose.yaml deploy/compose.postgres.yaml; do
			has "$list" "$f" || fail "$a lacks $f"
		done
		mkdir -p "$tmp/$os-$arch"
		tar -xzf "$a" -C "$tmp/$os-$arch" calhook
		# Static, for the platform (go records no -ldflags under
		# -trimpath: the stamped strings are looked for in the binary).
		info=$(go version -m "$tmp/$os-$arch/calhook")
		for want in "GOOS=$os" "GOARCH=$arch" "CGO_ENABLED=0" "-trimpath=true"; do
			grep -qF -- "$want" <<<"$info" || fail "$a: the binary's build info lacks $want"
		done
		for want in "$version" "$commit"; do
			grep -aqF -- "$want" "$tmp/$os-$arch/calhook" || fail "$a: the binary is not stamped with $want"
		done
		sbom=$a.spdx.json
		[[ -f $sbom ]] || fail "missing SBOM $sbom"
		jq -e '(.spdxVersion | startswith("SPDX-"))
			and any(.packages[]; .name == "github.com/prometheus/client_golang")
			and any(.packages[]; .name == "modernc.org/sqlite")' "$sbom" >/dev/null ||
			fail "$sbom is not an SPDX document listing calhook's modules"
	done
done

# The binary of this machine's platform runs and says what it is.
case $(uname -s)/$(uname -m) in
Linux/x86_64) native=linux-amd64 ;;
Linux/aarch64) native=linux-arm64 ;;
Darwin/x86_64) native=darwin-amd64 ;;
Darwin/arm64) native=darwin-arm64 ;;
*) native= ;;
esac
if [[ -n $native ]]; then
	out=$("$tmp/$native/calhook" version)
	echo "$out" | sed 's/^/  /'
	grep -qxF "calhook $version" <<<"$out" || fail "calhook version does not print calhook $version"
	grep -qxF "commit: $commit" <<<"$out" || fail "calhook version does not print commit: $commit"
	grep -qE '^built: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' <<<"$out" ||
		fail "calhook version does not print a build date"
fi

# Packages: the binary, the unit, the config file (a conffile, 0600) and
# the maintainer scripts.
pkgversion=${version/-/\~}
for arch in amd64 arm64; do
	deb=$dist/calhook_${pkgversion}_${arch}.deb
	[[ -f $deb ]] || fail "missing $deb"
	list=$(dpkg-deb -c "$deb" | awk '{print $1, $NF}')
	for f in "-rwxr-xr-x ./usr/bin/calhook" "-rw-r--r-- ./usr/lib/systemd/system/calhook.service" \
		"-rw------- ./etc/calhook/calhook.env"; do
		has "$list" "$f" || fail "$deb lacks $f (mode and path)"
	done
	control=$(dpkg-deb -I "$deb")
	for f in postinst prerm postrm conffiles; do
		grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$f( |$)" <<<"$control" || fail "$deb lacks its $f"
	done
	dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qxF /etc/calhook/calhook.env ||
		fail "$deb does not keep /etc/calhook/calhook.env as a conffile"
	[[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || fail "$deb is not for $arch"
done
for arch in x86_64 aarch64; do
	rpmfile=$dist/calhook-${pkgversion}-1.${arch}.rpm
	[[ -f $rpmfile ]] || fail "missing $rpmfile"
	list=$(rpm -qlp "$rpmfile" 2>/dev/null)
	for f in /usr/bin/calhook /usr/lib/systemd/system/calhook.service /etc/calhook/calhook.env; do
		has "$list" "$f" || fail "$rpmfile lacks $f"
	done
	rpm -qcp "$rpmfile" 2>/dev/null | grep -qxF /etc/calhook/calhook.env ||
		fail "$rpmfile does not mark /etc/calhook/calhook.env as config"
	scripts=$(rpm -qp --scripts "$rpmfile" 2>/dev/null)
	for s in postinstall preuninstall postuninstall; do
		grep -q "^$s scriptlet" <<<"$scripts" || fail "$rpmfile lacks its $s scriptlet"
	done
	[[ $(rpm -qp --qf '%{ARCH}' "$rpmfile" 2>/dev/null) == "$arch" ]] || fail "$rpmfile is not for $arch"
done

# Checksums: every archive, package and SBOM is listed and matches.
(cd "$dist" && sha256sum --quiet -c checksums.txt) || fail "checksums.txt does not match"
for f in "$dist"/*.tar.gz "$dist"/*.spdx.json "$dist"/*.deb "$dist"/*.rpm; do
	awk '{print $2}' "$dist/checksums.txt" | grep -qxF -- "${f##*/}" || fail "checksums.txt lacks ${f##*/}"
done

echo "artifacts:"
(cd "$dist" && ls -l checksums.txt *.tar.gz *.spdx.json *.deb *.rpm | awk '{printf "  %10d  %s\n", $5, $NF}')
echo "release-check: ok"
