#!/bin/sh
# Download rate of the emulator's content host against nginx serving the same
# file over TLS on loopback, measured with curl in alternation (best of N).
# Writes a markdown table to stdout.
#
#   bench/content-host.sh [SIZE_BYTES] [ROUNDS]     default 1 GiB, 3 rounds
set -eu
size=${1:-1073741824}
rounds=${2:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
emu="$top/tests/emulator"
work=$(mktemp -d "${TMPDIR:-/tmp}/spfs-bench-content.XXXXXX")
cleanup() {
	[ -f "$work/ngx/nginx.pid" ] && nginx -c "$work/ngx/nginx.conf" -s stop 2>/dev/null
	python3 "$emu/emulator.py" stop --state-dir "$work/emu" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$top/bench/lib.sh"
bench_start_emulator "$size"

mkdir -p "$work/ngx"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/ngx/nginx.conf" <<CONF
user $(id -un);
worker_processes 1;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $work/ngx/body;
  proxy_temp_path $work/ngx/proxy;
  fastcgi_temp_path $work/ngx/fcgi;
  uwsgi_temp_path $work/ngx/uwsgi;
  scgi_temp_path $work/ngx/scgi;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $work/emu/server.crt;
    ssl_certificate_key $work/emu/server.key;
    location = /big.bin { alias $(get dataset_dir)/large/big.bin; }
  }
}
CONF
nginx -c "$work/ngx/nginx.conf"

best_py=0
best_ngx=0
i=0
while [ "$i" -lt "$rounds" ]; do
	py=$(curl -sS --fail --cacert "$ca" -o /dev/null -w '%{speed_download}' "$url")
	ngx=$(curl -sS --fail --cacert "$ca" -o /dev/null -w '%{speed_download}' "https://127.0.0.1:$port/big.bin")
	best_py=$(python3 -c "print(max($best_py, ${py%.*}))")
	best_ngx=$(python3 -c "print(max($best_ngx, ${ngx%.*}))")
	i=$((i + 1))
done
python3 - "$size" "$rounds" "$best_py" "$best_ngx" <<'PY'
import sys
size, rounds, py, ngx = (int(x) for x in sys.argv[1:])
print(f"| server (TLS, loopback, curl) | best of {rounds}, {size / 2**20:.0f} MiB file | ratio to nginx |")
print("| --- | --- | --- |")
print(f"| emulator content host (Python) | {py / 1e6:.0f} MB/s | {py / ngx:.2f} |")
print(f"| nginx 1.22 (sendfile) | {ngx / 1e6:.0f} MB/s | 1.00 |")
PY
