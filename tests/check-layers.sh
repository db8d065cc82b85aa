#!/bin/sh
# Dependencies go one way: fuse -> fs -> (cache, graph -> auth -> http,
# sheets) -> base; metrics (the probe/scrape server) sits on base alone.
# Each folder may include only its own headers and those of the layers it
# sits on; the top-level wiring (src/main.c, options, check) may use all.
set -eu
top=${SPFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
bad=0

# layer: folder, the include prefixes it may use
check() {
	dir=$1
	shift
	allowed="config.h $*"
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -e "$f" ] || continue
		grep -o '^#include "[^"]*"' "$f" | sed 's/#include "//; s/"$//' |
			while read -r inc; do
				ok=no
				for a in $allowed; do
					case "$inc" in "$a"|"$a"/*) ok=yes ;; esac
				done
				if [ "$ok" = no ]; then
					echo "$f includes \"$inc\": not allowed for $dir (allowed: $allowed)"
					echo x >>"$tmp"
				fi
			done
	done
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
check src/base base
check src/http base http
check src/auth base http auth
check src/graph base http auth graph
check src/metrics base metrics
check src/sheets base sheets
check cache base cache
check src/fs base cache graph sheets fs
check fuse base fs fuse
# The CSI plugin stands on base alone: it drives spfs through its command
# line, never through its layers.
check csi base csi
# The adapter is the only code that includes fuse_lowlevel.h.
if grep -rl 'fuse_lowlevel.h' src cache | grep -q .; then
	echo "fuse_lowlevel.h included outside fuse/:"
	grep -rl 'fuse_lowlevel.h' src cache
	echo x >>"$tmp"
fi
if grep -l '#include "\(fs\|graph\|auth\|http\|cache\|fuse\)/' csi/*.c csi/*.h csi/*.cc 2>/dev/null | grep -q .; then
	echo "csi/ includes spfs's layers above base"
	echo x >>"$tmp"
fi
# json-c stays in the parsing layers.
if grep -l 'json-c/' src/fs/*.c cache/*.c fuse/*.c 2>/dev/null | grep -q .; then
	echo "json-c used above the graph layer"
	echo x >>"$tmp"
fi
# The workbook libraries stay in the converter.
if grep -lE '#include <(zip|freexl)\.h>|#include <libxml/' src/*.c src/*/*.c \
	cache/*.c fuse/*.c 2>/dev/null | grep -v '^src/sheets/' | grep -q .; then
	echo "libzip, libxml2 or libfreexl used outside src/sheets:"
	grep -lE '#include <(zip|freexl)\.h>|#include <libxml/' src/*.c src/*/*.c \
		cache/*.c fuse/*.c | grep -v '^src/sheets/'
	echo x >>"$tmp"
fi
[ -s "$tmp" ] && bad=1
[ "$bad" = 0 ] && echo "ok - layers: every include goes downwards"
exit "$bad"
