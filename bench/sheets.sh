#!/bin/sh
# Workbooks as CSV (-o sheets): the CSV of one sheet of ROWS rows x 7
# columns written by XlsxWriter, through spfs against xlsx2csv and
# gnumeric's ssconvert on the same workbook as a local file. Best of
# ROUNDS, the contenders alternating. spfs is timed
#   first:   `cat` of the CSV on a fresh cache where the workbook itself is
#            already cached (listing the folder converts every sheet);
#   warm:    `cat` again on the same mount (the kernel's page cache);
#   store:   `cat` after a remount with the page cache dropped (the CSV
#            read back from the content store, no conversion).
# Every spfs CSV is checked: the same bytes every round, ROWS lines, and
# (when the build has it) the same bytes as tests/tools/sheetconv.
# Writes a markdown table to stdout.
#
#   bench/sheets.sh [ROWS] [ROUNDS]      default 200000 rows, 3 rounds
set -eu
rows=${1:-200000}
rounds=${2:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
emu="$top/tests/emulator"
spfs=${SPFS_BIN:-$top/build/spfs}
[ -x "$spfs" ] || spfs=$top/spfs
build=$(dirname "$spfs")
work=$(mktemp -d "${TMPDIR:-/tmp}/spfs-bench-sheets.XXXXXX")
mnt=$work/mnt
cleanup() {
	fusermount3 -u "$mnt" 2>/dev/null || true
	python3 "$emu/emulator.py" stop --state-dir "$work/emu" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The workbook: the shape of the issue's (ids, names from a shared string
# table, amounts, dates, quantities, cities, ratios).
mkdir -p "$work/lib" "$mnt"
/usr/bin/python3 - "$work/lib/Book.xlsx" "$rows" <<'PY'
import datetime, random, sys
import xlsxwriter
random.seed(1)
wb = xlsxwriter.Workbook(sys.argv[1])
ws = wb.add_worksheet("data")
day = wb.add_format({"num_format": "yyyy-mm-dd"})
ws.write_row(0, 0, ["id", "name", "amount", "date", "qty", "city", "ratio"])
cities = ["Berlin", "Paris", "Zürich", "Oslo", "Lisboa", "Kraków", "Wien"]
base = datetime.datetime(2020, 1, 1)
for r in range(1, int(sys.argv[2])):
    ws.write_number(r, 0, r)
    ws.write_string(r, 1, "customer %d" % (r % 5000))
    ws.write_number(r, 2, round(random.uniform(0, 10000), 2))
    ws.write_datetime(r, 3, base + datetime.timedelta(days=r % 1500), day)
    ws.write_number(r, 4, random.randint(1, 500))
    ws.write_string(r, 5, cities[r % 7])
    ws.write_number(r, 6, round(random.random(), 4))
wb.close()
PY
book=$work/lib/Book.xlsx

python3 "$emu/emulator.py" start --state-dir "$work/emu" --dataset "$work/lib" >/dev/null
get() { python3 "$emu/emuctl.py" --state "$work/emu/state.json" get "$1"; }
export AZURE_CLIENT_ID="$(get client_id)" AZURE_TENANT_ID="$(get tenant_id)"
export AZURE_AUTHORITY_HOST="$(get authority_host)"
export AZURE_FEDERATED_TOKEN_FILE="$(get sa_token_file)"

timed() { # seconds for a command, to 1 ms
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}
best() { printf '%s\n' "$@" | sort -n | head -n 1; }
# BENCH_NO_DROP_CACHES=1 on a shared machine: others' page cache stays.
drop_caches() {
	sync
	[ -n "${BENCH_NO_DROP_CACHES:-}" ] || echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
mount_spfs() { # cache-dir
	"$spfs" "$(get site_url)" "$mnt" -o "graph_url=$(get graph_url),cafile=$(get ca_file),cache_dir=$1,poll_interval=0,sheets" 2>>"$work/spfs.log"
}
csv=$mnt/Book.xlsx.sheets/data.csv

first="" warm="" store="" x2c="" ssc="" want=""
for i in $(seq "$rounds"); do
	if command -v xlsx2csv >/dev/null; then
		x2c="$x2c $(timed xlsx2csv "$book" "$work/xlsx2csv.csv")"
	fi
	if command -v ssconvert >/dev/null; then
		ssc="$ssc $(timed ssconvert "$book" "$work/ssconvert.csv")"
	fi
	cache=$work/cache-$i
	mount_spfs "$cache"
	cat "$mnt/Book.xlsx" >/dev/null # the workbook cached, not converted
	first="$first $(timed cat "$csv")"
	warm="$warm $(timed cat "$csv")"
	cat "$csv" >"$work/got.csv"
	fusermount3 -u "$mnt"
	drop_caches
	mount_spfs "$cache"
	store="$store $(timed cat "$csv")"
	cmp -s "$csv" "$work/got.csv" || { echo "sheets.sh: the CSV changed across a remount" >&2; exit 1; }
	fusermount3 -u "$mnt"
	if [ -z "$want" ]; then
		want=$(sha256sum <"$work/got.csv")
	elif [ "$want" != "$(sha256sum <"$work/got.csv")" ]; then
		echo "sheets.sh: round $i gave other bytes" >&2
		exit 1
	fi
	rm -rf "$cache"
done
lines=$(wc -l <"$work/got.csv")
[ "$lines" -eq "$rows" ] || { echo "sheets.sh: $lines lines for $rows rows" >&2; exit 1; }
if [ -x "$build/tests/tools/sheetconv" ]; then
	"$build/tests/tools/sheetconv" "$book" 1 >"$work/sheetconv.csv"
	cmp -s "$work/sheetconv.csv" "$work/got.csv" || { echo "sheets.sh: the mount and sheetconv differ" >&2; exit 1; }
fi

mb() { echo "$1" | awk '{printf "%.1f", $1 / 1e6}'; }
ratio() { [ -n "$1" ] && echo "$1 $2" | awk '{printf "%.1fx", $1 / $2}' || echo "-"; }
b_first=$(best $first) b_warm=$(best $warm) b_store=$(best $store)
b_x2c=$( [ -n "$x2c" ] && best $x2c || echo "")
b_ssc=$( [ -n "$ssc" ] && best $ssc || echo "")
fastest=$(best $b_x2c $b_ssc)
echo "### Workbooks as CSV: $rows rows x 7 columns ($(mb "$(stat -c %s "$book")") MB .xlsx, $(mb "$(stat -c %s "$work/got.csv")") MB of CSV), best of $rounds"
echo
echo "| contender | seconds | faster than the faster tool |"
echo "| --- | ---: | ---: |"
[ -n "$b_x2c" ] && echo "| xlsx2csv (local file) | $b_x2c | |"
[ -n "$b_ssc" ] && echo "| ssconvert (local file) | $b_ssc | |"
echo "| spfs first conversion (workbook cached) | $b_first | $(ratio "$fastest" "$b_first") (goal 5x) |"
echo "| spfs warm mount (page cache) | $b_warm | $(ratio "$fastest" "$b_warm") (goal 10x) |"
echo "| spfs after a remount, page cache dropped | $b_store | $(ratio "$fastest" "$b_store") (goal 10x) |"
