# Shared set-up for the bench/ scripts (sourced, not run). Expects $work and
# $emu to be set; starts an emulator of SIZE bytes' large file in $work/emu,
# and sets $ca, $token (a Graph access token) and $url (big.bin's
# pre-authenticated download URL). Defines get KEY for the emulator's state.

# bench_start_emulator SIZE
bench_start_emulator() {
	python3 "$emu/emulator.py" start --state-dir "$work/emu" --profile test \
		--many 10 --large-size "$1" >/dev/null
	ca=$(get ca_file)
	token=$(curl -sS --fail --cacert "$ca" \
		--data-urlencode grant_type=client_credentials \
		--data-urlencode "client_id=$(get client_id)" \
		--data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
		--data-urlencode "client_assertion@$(get sa_token_file)" \
		--data-urlencode scope=https://graph.microsoft.com/.default \
		"$(get authority_host)$(get tenant_id)/oauth2/v2.0/token" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
	url=$(curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $token" \
		"$(get graph_url)/drives/$(get drive_id)/root:/large/big.bin" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["@microsoft.graph.downloadUrl"])')
}

get() { python3 "$emu/emuctl.py" --state "$work/emu/state.json" get "$1"; }
