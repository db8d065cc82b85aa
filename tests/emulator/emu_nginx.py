"""nginx as the content host (--content-backend nginx), for benchmarks.

nginx serves the same URL scheme as the Python host (emu_content.py),
/download/{item-id}/{version}?...&tempauth=v1.<exp>.<sig>, straight from
the per-version files of the ContentStore. secure_link checks the tempauth
signature and expiry (401 either way, as SharePoint answers). Everything
nginx writes (config, pid, logs, temp files) stays in the state directory;
it listens on loopback only, runs in the foreground as our child (so it
dies with us) and as the current user.

Expiring every URL early rewrites the config with a new signing key and
reloads nginx; the reload is confirmed by probing before returning.
The access log feeds the emulator's request log and counters.
"""

import ctypes
import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

# $uri is decoded and may hold spaces (tree paths); the encoded path of
# $request_uri never does. The query (tempauth) is cut off when read.
LOG_FORMAT = "$msec $request_method $request_uri $status $bytes_sent \"$http_range\""


def available():
    """Why nginx cannot be used, or None when it can."""
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not exe:
        return None, "nginx is not installed (Debian: apt-get install nginx-light)"
    out = subprocess.run([exe, "-V"], capture_output=True, text=True).stderr
    if "--with-http_secure_link_module" not in out:
        return None, (f"{exe} lacks --with-http_secure_link_module "
                      "(Debian 12: nginx-light has it; so do nginx-core / nginx-full)")
    return exe, None


def _die_with_parent():
    """nginx gets SIGQUIT if the emulator dies, even by SIGKILL, so a
    crashed emulator never leaves a content host behind (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxContent:
    def __init__(self, state_dir, content_dir, cert, key, ca_file, urls, log):
        exe, why = available()
        if exe is None:
            raise RuntimeError(why)
        self.exe = exe
        self.dir = os.path.join(state_dir, "nginx")
        for sub in ("", "tmp"):
            os.makedirs(os.path.join(self.dir, sub), mode=0o700, exist_ok=True)
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.content_dir = content_dir
        self.tree_dir = None  # the library's directory, served at /tree/
        self.cert, self.key, self.ca_file = cert, key, ca_file
        self.urls = urls
        self.log = log
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc = None
        self.log_offset = 0

    # ---- configuration ----
    def _user_directive(self):
        # Only a root master switches workers to another user (default
        # "nobody", who cannot read the 0700 state directory).
        if os.geteuid() != 0:
            return ""
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return f"user {user} {group};\n"

    def _tree_location(self):
        # The library as a web tree (nginx autoindex), for benchmarks of
        # tools that speak plain HTTP (rclone's http backend).
        if not self.tree_dir:
            return ""
        return (f"        location /tree/ {{ limit_except GET {{ deny all; }} "
                f"alias {self.tree_dir}/; autoindex on; }}\n")

    def render(self):
        d, tmp = self.dir, os.path.join(self.dir, "tmp")
        temp_paths = "".join(f"    {kind}_temp_path {tmp}/{kind};\n"
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return f"""# Written by the spfs emulator; regenerated on every start.
{self._user_directive()}daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {self.error_log} warn;
events {{ worker_connections 512; }}
http {{
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
{temp_paths}    log_format spfs '{LOG_FORMAT}';
    access_log {self.access_log} spfs;
    map $arg_tempauth $tempauth_exp {{ "~^v1\\.(?<e>[0-9]+)\\.[A-Za-z0-9_-]+$" $e; default ""; }}
    map $arg_tempauth $tempauth_sig {{ "~^v1\\.[0-9]+\\.(?<s>[A-Za-z0-9_-]+)$" $s; default ""; }}
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {self.cert};
        ssl_certificate_key {self.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location ~ "^/download/(?<item>[A-Za-z0-9]+)/(?<ver>[0-9]+)$" {{
            limit_except GET {{ deny all; }}
            secure_link $tempauth_sig,$tempauth_exp;
            secure_link_md5 "$tempauth_exp$uri {self.urls.key()}";
            if ($secure_link = "") {{ return 401; }}
            if ($secure_link = "0") {{ return 401; }}
            alias {self.content_dir}/$item.$ver;
        }}
{self._tree_location()}        location / {{ return 404; }}
    }}
}}
"""

    def _write_conf(self):
        tmp = self.conf + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(self.render())
        os.replace(tmp, self.conf)

    # ---- lifecycle ----
    def start(self, timeout=10):
        self._write_conf()
        test = subprocess.run([self.exe, "-t", "-q", "-p", self.dir, "-c", self.conf,
                               "-e", self.error_log], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.conf}: {test.stderr.strip()}")
        self.proc = subprocess.Popen([self.exe, "-p", self.dir, "-c", self.conf, "-e", self.error_log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        if not self._wait_for(lambda code: code == 404, timeout):
            self.stop()
            raise RuntimeError(f"nginx did not come up on port {self.port}; see {self.error_log}")
        self.log(f"nginx content host pid {self.proc.pid} on {self.url}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful: finish in-flight downloads
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rekey(self, timeout=10):
        """Called after DownloadUrls.expire_all(): the old key must stop
        working before the control call returns."""
        self._write_conf()
        self.proc.send_signal(signal.SIGHUP)
        if not self._wait_for(lambda code: code == 404, timeout):
            raise RuntimeError("nginx did not reload with the new download key")

    def _probe(self):
        """Status of a correctly signed URL for a file that does not exist:
        404 once nginx runs with the current key, 401 with an older one."""
        exp = int(time.time()) + 60
        path = "/download/PROBE/0"
        url = f"{self.url}{path}?tempauth=v1.{exp}.{self.urls.sign(path, exp, self.urls.key())}"
        ctx = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def _wait_for(self, ok, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            if ok(self._probe()):
                return True
            time.sleep(0.05)
        return False

    def drain_log(self):
        """New access-log entries as request-log dicts (probes left out)."""
        try:
            with open(self.access_log, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.log_offset += end
        out = []
        for line in data[:end].decode("utf-8", "replace").splitlines():
            parts = line.split(" ", 5)
            if len(parts) < 6 or parts[2] == "/download/PROBE/0":
                continue
            t, method, uri, status, sent, rng = parts
            uri = urllib.parse.unquote(uri.split("?", 1)[0])
            rng = rng.strip('"')
            out.append({"t": float(t), "end": float(t), "listener": "nginx", "method": method,
                        "path": uri, "route": "download" if uri.startswith("/download/")
                        else "tree" if uri.startswith("/tree/") else "unknown",
                        "status": int(status), "range": None if rng in ("", "-") else rng,
                        "client_request_id": None, "bytes_sent": int(sent)})
        return out
