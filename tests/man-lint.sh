#!/bin/sh
# The man page lints clean (mandoc -Tlint at warning level and above), and
# documents every -o option spfs --help lists.
set -eu
src=${SPFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
spfs=${SPFS_BIN:-${SPFS_BUILDDIR:-.}/spfs}
man="$src/man/spfs.1"
fail=0

out=$(mandoc -Tlint -Wwarning "$man" 2>&1) || true
if [ -n "$out" ]; then
	echo "$out"
	echo "not ok - mandoc -Tlint"
	fail=1
else
	echo "ok - mandoc -Tlint is clean"
fi
# Every option --help lists ("  key=...", "  key, ...") has an entry of its
# own in the page (a tagged paragraph: the key at the start of the line).
text=$(mandoc -Tascii "$man" | sed 's/.\x08//g')
for key in $("$spfs" --help | sed -n 's/^  \([a-z_]*\)\([=, ].*\)\{0,1\}$/\1/p' | sort -u); do
	case "$key" in "" | spfs) continue ;; esac
	echo "$text" | grep -Eq "^ {7}([a-z_]+, )?$key([=, ]|\$)" || {
		echo "not ok - option $key (spfs --help) is not in man/spfs.1"
		fail=1
	}
done
[ "$fail" = 0 ] && echo "ok - every option of spfs --help is in the man page"

# spfs-csi's page (when it is built): clean, and every flag of its --help
# has a tagged paragraph.
csi_man="$src/man/spfs-csi.8"
csi=${SPFS_BUILDDIR:-.}/spfs-csi
out=$(mandoc -Tlint -Wwarning "$csi_man" 2>&1) || true
if [ -n "$out" ]; then
	echo "$out"
	echo "not ok - mandoc -Tlint man/spfs-csi.8"
	fail=1
else
	echo "ok - mandoc -Tlint man/spfs-csi.8 is clean"
fi
if [ -x "$csi" ]; then
	text=$(mandoc -Tascii "$csi_man" | sed 's/.\x08//g')
	missing=0
	for flag in $("$csi" --help | grep -o -- '--[a-z-]*' | sort -u); do
		echo "$text" | grep -Eq "^ {7}(-[a-zA-Z], )?$flag( |,|\$)" || {
			echo "not ok - $flag (spfs-csi --help) is not in man/spfs-csi.8"
			missing=1
		}
	done
	[ "$missing" = 0 ] && echo "ok - every flag of spfs-csi --help is in its man page"
	[ "$missing" = 0 ] || fail=1
fi
exit "$fail"
