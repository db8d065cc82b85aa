#!/bin/sh
# The binary answers --help and --version truthfully and refuses what it
# cannot do yet with a non-zero exit and a message.
. "$(dirname "$0")/../lib/common.sh"

out=$("$SPFS_BIN" --version) || fail "--version exited non-zero"
echo "$out" | grep -Eq '^spfs [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version printed '$out'"
ok "--version: $out"

"$SPFS_BIN" --help >"$T_DIR/help" || fail "--help exited non-zero"
grep -q '^Usage: spfs' "$T_DIR/help" || fail "--help has no usage line"
ok "--help prints usage"

set +e
"$SPFS_BIN" https://contoso.sharepoint.com/sites/x /mnt/x >"$T_DIR/out" 2>"$T_DIR/err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an unsupported invocation exited 0"
[ -s "$T_DIR/err" ] || fail "an unsupported invocation said nothing on stderr"
ok "unsupported invocation exits $rc with a message"
