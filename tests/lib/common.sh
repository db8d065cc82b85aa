# Shared helpers for shell integration tests. Source it; it sets `set -eu`,
# a per-test scratch directory and a cleanup trap that stops everything the
# test started, also when the test fails.
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip (only when a
# prerequisite is truly absent), 99 hard error.

set -eu

: "${SPFS_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SPFS_BUILDDIR:=$SPFS_SRCDIR}"
: "${SPFS_BIN:=$SPFS_BUILDDIR/spfs}"
: "${PYTHON:=python3}"
EMU="$SPFS_SRCDIR/tests/emulator"

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/spfs-$T_NAME.XXXXXX")
T_CLEANUPS=""

# Registers a shell command to run at exit (last registered runs first).
at_exit() { T_CLEANUPS="$1
$T_CLEANUPS"; }

t_cleanup() {
	rc=$?
	set +e
	printf '%s\n' "$T_CLEANUPS" | while IFS= read -r cmd; do
		[ -n "$cmd" ] && eval "$cmd" >/dev/null 2>&1
	done
	if [ "$rc" -ne 0 ] && [ -d "$T_DIR" ]; then
		for f in "$T_DIR"/emu/emulator.log; do
			[ -f "$f" ] && { echo "--- $f (tail)"; tail -n 30 "$f"; }
		done
	fi
	rm -rf "$T_DIR"
	exit "$rc"
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# emu_start [emulator.py start options...]: starts an emulator in $T_DIR/emu
# and reads its state file. Stopped automatically at exit.
emu_start() {
	EMU_STATE_DIR="$T_DIR/emu"
	at_exit "$PYTHON '$EMU/emulator.py' stop --state-dir '$EMU_STATE_DIR'"
	"$PYTHON" "$EMU/emulator.py" start --state-dir "$EMU_STATE_DIR" "$@" ||
		fail "emulator did not start"
	EMU_STATE="$EMU_STATE_DIR/state.json"
}

# emu_get KEY: a value from the emulator's state file.
emu_get() {
	"$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$EMU_STATE" "$1"
}
