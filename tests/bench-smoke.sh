#!/bin/sh
# The benchmark harness works: bench/run --quick runs every scenario against
# real mounts and writes results that parse. Never a timing assertion.
set -eu
src=${SPFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${SPFS_BUILDDIR:-.}
out="$build/bench-smoke"
rm -rf "$out"
python3 "$src/bench/run" --quick --spfs "$build/spfs" --out "$out" >"$build/bench-smoke.log" 2>&1 || {
	tail -n 40 "$build/bench-smoke.log"
	echo "not ok - bench/run --quick failed"
	exit 1
}
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
results = json.load(open(os.path.join(out, "results.json")))
scen = {r["scenario"].split(" ")[0] for r in results}
want = {"1", "2", "3", "5", "6", "7"} | ({"4"} if any(
    os.access(os.path.join(p, "fio"), os.X_OK) for p in os.environ["PATH"].split(":")) else set())
assert want <= scen, f"scenarios missing: {want - scen}"
for r in results:
    assert r["seconds"] > 0, r
    if "bytes" in r:
        assert r["MBps"] and r["MBps"] > 0, r
contenders = {r["contender"] for r in results}
for c in ("spfs", "spfs cache=off", "rclone --vfs-cache-mode off", "limit: curl of the download URL",
          "limit: null FUSE filesystem"):
    assert c in contenders, f"no {c!r} in the results"
report = open(os.path.join(out, "report.md")).read()
targets = report.split("### Targets", 1)[1]
rows = [l for l in targets.splitlines() if l.startswith("| ") and "---" not in l]
assert len(rows) == 14, rows  # the header and thirteen targets
for l in rows[1:]:
    # Eight readers run in full mode only.
    quick_only = "eight readers" in l or "8 parallel" in l
    assert l.rstrip().endswith(("| yes |", "| no |")) or quick_only, f"target not measured: {l}"
import re
checks = re.search(r"checked byte for byte: (\d+) checks", targets)
assert checks and int(checks.group(1)) >= 5, "the reads were not checked"
print(f"ok - bench/run --quick: {len(results)} measurements, {len(scen)} scenarios, report parses")
PY
