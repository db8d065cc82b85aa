#!/bin/sh
# The emulator from the outside, with curl and OpenSSL (the stack spfs uses):
# start writes a state file, TLS verifies against the emulator's CA, a
# workload-identity token exchange works, Graph answers with that token,
# the content host serves exact ranges, and stop leaves nothing running.
. "$(dirname "$0")/../lib/common.sh"
command -v curl >/dev/null || { echo "curl missing"; exit 77; }

emu_start --profile test --many 50 --large-size 1048576
CA=$(emu_get ca_file)
AUTH=$(emu_get authority_host)
TENANT=$(emu_get tenant_id)
CLIENT=$(emu_get client_id)
GRAPH=$(emu_get graph_url)
DRIVE=$(emu_get drive_id)
PID=$(emu_get pid)
kill -0 "$PID" || fail "emulator pid $PID is not running"
ok "emulator started (pid $PID)"

# Plain TLS verification failure without the CA: never a silent fallback.
if curl -sS -o /dev/null "${GRAPH}/drives/$DRIVE" 2>"$T_DIR/tls.err"; then
	fail "TLS succeeded without the emulator CA"
fi
ok "TLS without the CA is refused"

# Workload identity exchange, exactly as spfs will do it.
curl -sS --fail-with-body --cacert "$CA" \
	--data-urlencode grant_type=client_credentials \
	--data-urlencode "client_id=$CLIENT" \
	--data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
	--data-urlencode "client_assertion@$(emu_get sa_token_file)" \
	--data-urlencode "scope=https://graph.microsoft.com/.default" \
	"${AUTH}${TENANT}/oauth2/v2.0/token" >"$T_DIR/token.json" ||
	fail "token request failed: $(cat "$T_DIR/token.json")"
TOKEN=$("$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["token_type"]=="Bearer" and int(d["expires_in"])>0; print(d["access_token"])' "$T_DIR/token.json") ||
	fail "token response malformed"
ok "workload identity token obtained"

curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
	"${GRAPH}/drives/$DRIVE/root:/large/big.bin" >"$T_DIR/item.json" ||
	fail "item by path failed"
"$PYTHON" - "$T_DIR/item.json" "$(emu_get dataset_dir)/large/big.bin" <<'PY' || fail "item JSON does not match the dataset"
import json, os, sys
item = json.load(open(sys.argv[1]))
assert item["size"] == os.path.getsize(sys.argv[2]), item["size"]
assert item["file"]["hashes"]["quickXorHash"]
assert item["@microsoft.graph.downloadUrl"].startswith("https://")
PY
URL=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["@microsoft.graph.downloadUrl"])' "$T_DIR/item.json")
ok "item by path matches the dataset"

curl -sS --fail --cacert "$CA" -r 1000-4999 -o "$T_DIR/range" -w '%{http_code}' "$URL" >"$T_DIR/code"
[ "$(cat "$T_DIR/code")" = 206 ] || fail "range answered $(cat "$T_DIR/code")"
dd if="$(emu_get dataset_dir)/large/big.bin" bs=1000 skip=1 count=4 status=none >"$T_DIR/expect"
cmp "$T_DIR/range" "$T_DIR/expect" || fail "range bytes differ"
ok "ranged download is exact (206)"

curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "${GRAPH}/drives/$DRIVE/root" >"$T_DIR/code" || true
[ "$(cat "$T_DIR/code")" = 401 ] || fail "Graph without a token answered $(cat "$T_DIR/code")"
ok "Graph without a token is 401"

"$PYTHON" "$EMU/emulator.py" stop --state-dir "$EMU_STATE_DIR" || fail "stop failed"
sleep 0.2
if kill -0 "$PID" 2>/dev/null; then fail "emulator still running after stop"; fi
[ ! -e "$EMU_STATE" ] || fail "state file left behind after stop"
ok "stop is clean"
