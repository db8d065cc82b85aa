#!/bin/sh
# `make check-long`: the long mode of the reliability tests, for a developer
# machine (about an hour; docs/RELIABILITY.md keeps the last results).
#   - the token soak for SPFS_SOAK_SECONDS (default 3600), while
#   - the reliability and bad-input tests run SPFS_LONG_REPEAT times over
#     (default 3) beside it, hunting for the rare failure;
#   - memcheck of the daemon (test_valgrind.py);
#   - the image: k8s/Dockerfile built with buildah from a Debian 12 base
#     made by mmdebstrap, and a mount inside it (tests/k8s/test_image.py,
#     a few minutes: packages and a compile);
#   - with FUZZ_BUILDDIR set (a tree configured with CC=clang
#     --enable-fuzzing), every fuzz target for FUZZ_SECONDS (default 600).
# Logs go to check-long/ in the build tree; one line per run here.
set -u
: "${SPFS_SRCDIR:?run through make check-long}"
: "${SPFS_BUILDDIR:?run through make check-long}"
export SPFS_SOAK_SECONDS="${SPFS_SOAK_SECONDS:-3600}"
repeat=${SPFS_LONG_REPEAT:-3}
out="$SPFS_BUILDDIR/check-long"
rm -rf "$out"
mkdir -p "$out"
it="$SPFS_SRCDIR/tests/integration"
py=${PYTHON:-python3}
failed=0

# run NAME COMMAND...: runs it with its output in $out/NAME.log.
run() {
	name=$1
	shift
	t0=$(date +%s)
	if "$@" >"$out/$name.log" 2>&1; then
		result=ok
	else
		result=FAILED
		failed=$((failed + 1))
	fi
	echo "check-long: $name: $result in $(($(date +%s) - t0)) s" |
		tee -a "$out/summary"
	[ "$result" = ok ] || tail -n 30 "$out/$name.log"
}

echo "check-long: token soak for $SPFS_SOAK_SECONDS s, reliability x$repeat beside it"
run soak "$py" "$it/test_soak.py" &
soak=$!
i=1
while [ "$i" -le "$repeat" ]; do
	run "reliability-$i" "$py" "$it/test_reliability.py"
	run "bad-input-$i" "$py" "$it/test_bad_input.py"
	i=$((i + 1))
done
wait "$soak"
grep -h 'token soak:' "$out/soak.log" || true
run valgrind "$py" "$it/test_valgrind.py"
grep -h 'memcheck:' "$out/valgrind.log" || true
run image "$py" "$SPFS_SRCDIR/tests/k8s/test_image.py"
grep -h '^image:' "$out/image.log" || true
if [ -n "${FUZZ_BUILDDIR:-}" ]; then
	run fuzz make -C "$FUZZ_BUILDDIR" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
	grep -h '^fuzz: ' "$out/fuzz.log" || true
fi
# The soak ran in a background subshell: count its result from the summary.
failed=$(grep -c FAILED "$out/summary" || true)
echo "check-long: $failed failed (logs in $out)"
[ "$failed" -eq 0 ]
