#!/bin/sh
# Read throughput of one large file through spfs against the limits: curl of
# the same download URL (the network path's limit) and cat of the same bytes
# on the local disk (the machine's limit). Cold = empty content cache; warm
# (store) = cached in sqlite, kernel page cache dropped; warm (page cache) =
# re-read while mounted. Best of ROUNDS, each run alternating the contenders.
# Writes a markdown table to stdout.
#
#   bench/read.sh [SIZE_BYTES] [ROUNDS] [CHUNK_SIZES]
#   default 256 MiB, 3 rounds, chunk sizes "4M"; e.g. "1M 4M 16M" to sweep
set -eu
size=${1:-268435456}
rounds=${2:-3}
chunks=${3:-4M}
top=$(cd "$(dirname "$0")/.." && pwd)
emu="$top/tests/emulator"
spfs=${SPFS_BIN:-$top/build/spfs}
[ -x "$spfs" ] || spfs=$top/spfs
work=$(mktemp -d "${TMPDIR:-/tmp}/spfs-bench-read.XXXXXX")
mnt=$work/mnt
cleanup() {
	fusermount3 -u "$mnt" 2>/dev/null || true
	python3 "$emu/emulator.py" stop --state-dir "$work/emu" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$top/bench/lib.sh"
bench_start_emulator "$size"
local_file=$(get dataset_dir)/large/big.bin

export AZURE_CLIENT_ID="$(get client_id)" AZURE_TENANT_ID="$(get tenant_id)"
export AZURE_AUTHORITY_HOST="$(get authority_host)"
export AZURE_FEDERATED_TOKEN_FILE="$(get sa_token_file)"
mkdir -p "$mnt"

# seconds for a command, to 1 ms
timed() {
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}
mbps() { echo "$size $1" | awk '{printf "%.0f", $1 / $2 / 1e6}'; }
best() { printf '%s\n' "$@" | sort -n | head -n 1; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

mount_spfs() { # cache-dir chunk-size [more options]
	"$spfs" "$(get site_url)" "$mnt" -o "graph_url=$(get graph_url),cafile=$ca,cache_dir=$1,chunk_size=$2,poll_interval=0${3:+,$3}" 2>>"$work/spfs.log"
}

curl_t=
cat_t=
for r in $(seq "$rounds"); do
	drop_caches
	curl_t="$curl_t $(timed curl -sS --fail --cacert "$ca" -o /dev/null "$url")"
	drop_caches
	cat_t="$cat_t $(timed cat "$local_file")"
done
curl_best=$(best $curl_t)
cat_best=$(best $cat_t)

echo "| contender | chunk | best of $rounds, $((size >> 20)) MiB | MB/s | ratio to curl | ratio to local cat |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
row() { # name chunk seconds
	echo "| $1 | $2 | $3 s | $(mbps "$3") | $(echo "$curl_best $3" | awk '{printf "%.2f", $1 / $2}') | $(echo "$cat_best $3" | awk '{printf "%.2f", $1 / $2}') |"
}
row "curl, same download URL" - "$curl_best"
row "cat, local file" - "$cat_best"
for c in $chunks; do
	cold= store= page= off=
	for r in $(seq "$rounds"); do
		rm -rf "$work/cache"
		mount_spfs "$work/cache" "$c" cache=off
		drop_caches
		off="$off $(timed cat "$mnt/large/big.bin")"
		fusermount3 -u "$mnt"
		rm -rf "$work/cache"
		mount_spfs "$work/cache" "$c"
		drop_caches
		cold="$cold $(timed cat "$mnt/large/big.bin")"
		page="$page $(timed cat "$mnt/large/big.bin")"
		fusermount3 -u "$mnt"
		mount_spfs "$work/cache" "$c"
		drop_caches
		store="$store $(timed cat "$mnt/large/big.bin")"
		cmp -s "$mnt/large/big.bin" "$local_file" || { echo "bytes differ" >&2; exit 1; }
		fusermount3 -u "$mnt"
	done
	row "spfs cold, cache=off (download only)" "$c" "$(best $off)"
	row "spfs cold (download and store)" "$c" "$(best $cold)"
	row "spfs warm (sqlite store, remounted)" "$c" "$(best $store)"
	row "spfs warm (kernel page cache)" "$c" "$(best $page)"
done
