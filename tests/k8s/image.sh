#!/bin/sh
# What can be checked of k8s/Dockerfile without a container engine: the
# runtime stage installs every library `ldd spfs` needs (its packages or
# their dependencies), tini is PID 1 in front of spfs, and every option the
# manifests pass exists in the binary's --help.
set -eu
src=${SPFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
spfs=${SPFS_BIN:-${SPFS_BUILDDIR:-.}/spfs}
df="$src/k8s/Dockerfile"
fail=0

pkgs=$(sed -n 's/^# runtime-packages: //p' "$df")
[ -n "$pkgs" ] || {
	echo "not ok - no '# runtime-packages:' line in $df"
	exit 1
}
for p in $pkgs; do
	grep -q "^ *.*\b$p\b" "$df" || {
		echo "not ok - $p is listed but not installed by the runtime stage"
		fail=1
	}
done
# depends_closure PACKAGE...: the packages and everything apt brings along.
depends_closure() {
	apt-cache depends --recurse --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null |
		sed -n 's/^\([a-z0-9][^ <:]*\).*/\1/p; s/^ *\(Pre\)\{0,1\}Depends: \([^ <:]*\).*/\2/p' |
		sort -u
}
# debian:12-slim has libc6.
closure="$(depends_closure $pkgs) libc6"
# A listed package that another listed one already brings is noise.
for p in $pkgs; do
	others=$(echo "$pkgs" | tr ' ' '\n' | grep -vx "$p")
	if depends_closure $others | grep -qx "$p"; then
		echo "not ok - $p is redundant: another runtime package depends on it"
		fail=1
	fi
done
# A sanitizer build (scripts/test's build/asan) links the sanitizer
# runtimes, which an image never ships: not counted.
if ldd "$spfs" | grep -q 'libasan\|libubsan'; then
	closure="$closure libasan8 libubsan1 libstdc++6"
fi
# spfs-csi (built when gRPC is there) ships in the same image.
csi_bin=$(dirname "$spfs")/spfs-csi
bins=$spfs
[ -x "$csi_bin" ] && bins="$bins $csi_bin"
n=0
for lib in $(for b in $bins; do ldd "$b"; done | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p' | sort -u); do
	real=$(readlink -f "$lib")
	owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true)
	owner=$(echo "$owner" | head -n1 | cut -d: -f1)
	n=$((n + 1))
	if [ -z "$owner" ]; then
		echo "not ok - $lib belongs to no package"
		fail=1
	elif ! echo "$closure" | tr ' ' '\n' | grep -qx "$owner"; then
		echo "not ok - $lib ($owner) is not installed by the runtime stage"
		fail=1
	fi
done
[ "$n" -gt 5 ] || {
	echo "not ok - ldd listed only $n libraries"
	fail=1
}
[ "$fail" = 0 ] && echo "ok - the runtime stage covers the $n libraries of ldd $(for b in $bins; do basename "$b"; done | tr '\n' ' ')"

# .dockerignore mirrors .gitignore: a line "/x" or "x/y" there is "x" or
# "x/y" here, a bare name "x" is "**/x", a trailing "/" is dropped.
missing=$(sed -e '/^#/d' -e '/^$/d' "$src/.gitignore" | while read -r pat; do
	neg=
	case "$pat" in "!"*) neg="!" pat=${pat#!} ;; esac
	pat=${pat%/}
	case "$pat" in
	/*) want=${pat#/} ;;
	*/*) want=$pat ;;
	*) want="**/$pat" ;;
	esac
	grep -qxF -- "$neg$want" "$src/.dockerignore" || echo "$neg$want"
done)
if [ -n "$missing" ]; then
	echo "not ok - .dockerignore lacks what .gitignore ignores:" "$(echo "$missing" | tr '\n' ' ')"
	fail=1
elif ! grep -qx '.git' "$src/.dockerignore"; then
	echo "not ok - .dockerignore does not keep .git out of the build context"
	fail=1
else
	echo "ok - .dockerignore mirrors .gitignore and leaves .git out"
fi

grep -q '^ENTRYPOINT \["tini", "--", "spfs"\]' "$df" &&
	echo "ok - tini is PID 1 in front of spfs" || {
	echo "not ok - ENTRYPOINT is not tini -- spfs"
	fail=1
}

# Every -o key the manifests use is one spfs documents.
help=$("$spfs" --help)
opts=$(sed -n 's/^SPFS_OPTIONS=//p' "$src/k8s/base/settings.env")
[ -n "$opts" ] || {
	echo "not ok - no SPFS_OPTIONS in k8s/base/settings.env"
	exit 1
}
for kv in $(echo "$opts" | tr ',' ' '); do
	key=${kv%%=*}
	if echo "$help" | grep -Eq "^ +$key(=|[ ,]|\$)"; then
		:
	else
		echo "not ok - option $key (k8s/base/settings.env) is not in spfs --help"
		fail=1
	fi
done
[ "$fail" = 0 ] && echo "ok - every option in the manifests is in spfs --help"
exit "$fail"
