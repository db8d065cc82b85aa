#!/usr/bin/env python3
"""Graph / Entra ID / IMDS emulator for spfs tests (Python stdlib only).

  emulator.py start --state-dir DIR [--profile test|demo|bench | --dataset DIR]
                    [--many N] [--large-size BYTES] [--token-lifetime S]
                    [--download-url-lifetime S] [--content-backend python|nginx]
                    [--foreground]
  emulator.py stop --state-dir DIR

start returns once every listener is up and DIR/state.json is written (the
URLs, the CA, the token and key files); stop ends it cleanly. See README.md.
"""

import argparse
import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dataset  # noqa: E402
import emu_crypto  # noqa: E402
from emu_content import ContentApp, DownloadUrls  # noqa: E402
from emu_control import ControlApp, Faults  # noqa: E402
from emu_entra import Entra, EntraApp, ImdsApp, IssuerApp  # noqa: E402
from emu_graph import GraphApp  # noqa: E402
from emu_http import Listener  # noqa: E402
from emu_model import ContentStore, Drive, HashCache  # noqa: E402
from emu_nginx import NginxContent  # noqa: E402
from kubelet import mint_sa_token, write_token_file  # noqa: E402

SITE_HOST = "contoso.sharepoint.com"


def _guid(name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spfs-emulator:{name}"))


def _drive_id(name):
    # SharePoint drive ids: "b!" + 64 base64url characters (48 bytes).
    raw = hashlib.sha384(name.encode()).digest()
    return "b!" + emu_crypto.b64url_encode(raw)


class Site:
    def __init__(self, path, name, display_name):
        self.path = path  # "/sites/Finance", "/teams/Ops", "/" for the root site
        self.name = name
        self.display_name = display_name
        self.id = f"{SITE_HOST},{_guid('sc' + path)},{_guid('web' + path)}"
        self.web_url = f"https://{SITE_HOST}" + ("" if path == "/" else path)
        self.drives = []
        self.created = 1700000000

    def json(self):
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))
        return {"id": self.id, "name": self.name, "displayName": self.display_name,
                "webUrl": self.web_url, "createdDateTime": t, "lastModifiedDateTime": t,
                "siteCollection": {"hostname": SITE_HOST}}


class Emulator:
    def __init__(self, args):
        self.state_dir = os.path.abspath(args.state_dir)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.secret = os.urandom(32)
        self.lock = threading.Lock()
        self.request_log = []
        self.faults = Faults(self)
        self.urls = DownloadUrls(self.secret, args.download_url_lifetime)
        self.nextlink_lifetime = 3600.0
        self.log_file = open(os.path.join(self.state_dir, "emulator.log"), "a", buffering=1)
        self.store = ContentStore(os.path.join(self.state_dir, "content"))
        self.nginx = None

        ca_crt, ca_key = emu_crypto.make_ca(self.state_dir)
        crt, key = emu_crypto.make_server_cert(self.state_dir, ca_crt, ca_key)
        self.ca_file = ca_crt
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(crt, key)
        tls.set_alpn_protocols(["http/1.1"])

        tenant = _guid("tenant")
        client = _guid("client")
        self.entra = Entra(self, self.state_dir, tenant, client, args.token_lifetime)
        self.graph_app = GraphApp(self)
        self.listeners = {
            "login": Listener("login", EntraApp(self, self.entra), self, tls),
            "graph": Listener("graph", self.graph_app, self, tls),
            "content": Listener("content", ContentApp(self), self, tls),
            "issuer": Listener("issuer", IssuerApp(self), self, tls),
            "imds": Listener("imds", ImdsApp(self, self.entra), self, None),
            "control": Listener("control", ControlApp(self), self, None),
        }
        self.authority_host = self.listeners["login"].url + "/"
        self.graph_url = self.listeners["graph"].url + "/v1.0"
        self.python_content_url = self.listeners["content"].url
        self.content_url = self.python_content_url
        if args.content_backend == "nginx":
            self.nginx = NginxContent(self.state_dir, self.store.dir, crt, key, ca_crt,
                                      self.urls, self.log)
            self.content_url = self.nginx.url
        self.oidc_issuer = f"{self.listeners['issuer'].url}/{tenant}/{_guid('cluster')}/"

        issuer_key_path = os.path.join(self.state_dir, "issuer.key")
        self.issuer_keys = [emu_crypto.RsaKey.generate(issuer_key_path)]

        # The registered app / user-assigned identity, and its credentials.
        secret_file = os.path.join(self.state_dir, "client-secret")
        client_secret = emu_crypto.b64url_encode(os.urandom(30))
        with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(client_secret)
        cert_crt, cert_key = emu_crypto.make_client_cert(self.state_dir, "spfs-developer")
        pub = emu_crypto.cert_public_key(cert_crt)
        self.entra.register_client(client, secrets=[client_secret], certs={
            ("sha1", emu_crypto.cert_thumbprint(cert_crt, "sha1")): pub,
            ("sha256", emu_crypto.cert_thumbprint(cert_crt, "sha256")): pub})
        sa_ns, sa_name = "data", "spfs-reader"
        self.entra.add_fic(client, self.oidc_issuer, f"system:serviceaccount:{sa_ns}:{sa_name}")

        # IMDS: the node's system-assigned identity, and the user-assigned one.
        system_id = _guid("system-assigned")
        self.entra.register_client(system_id)
        self.imds_identities = {None: {"client_id": system_id},
                                client: {"client_id": client}}

        self.drives = {}
        self.sites = []
        self.shares = {}  # sharing link (without its query) -> (drive id, item id)
        self.site_grants = {}  # client_id -> set of site paths (Sites.Selected)
        dataset_dir = self._build_sites(args)
        if self.nginx is not None:
            self.nginx.tree_dir = os.path.abspath(dataset_dir)

        sa_file = os.path.join(self.state_dir, "sa-token")
        write_token_file(sa_file, mint_sa_token(self.issuer_keys[0], self.oidc_issuer,
                                                sa_ns, sa_name))
        finance = self.sites[1]
        self.state = {
            "pid": os.getpid(), "state_dir": self.state_dir, "ca_file": ca_crt,
            "tenant_id": tenant, "client_id": client,
            "authority_host": self.authority_host, "graph_url": self.graph_url,
            "content_url": self.content_url, "content_backend": args.content_backend,
            "python_content_url": self.python_content_url, "oidc_issuer": self.oidc_issuer,
            "issuer_key": issuer_key_path, "sa_token_file": sa_file,
            "sa_namespace": sa_ns, "sa_name": sa_name,
            "imds_url": self.listeners["imds"].url, "imds_client_id": client,
            "imds_system_client_id": system_id,
            "control_url": self.listeners["control"].url,
            "client_cert": cert_crt, "client_key": cert_key, "client_secret_file": secret_file,
            "site_hostname": SITE_HOST, "site_url": finance.web_url, "site_id": finance.id,
            "drive_id": finance.drives[0].id, "drive_name": finance.drives[0].name,
            "dataset_dir": dataset_dir,
        }

    def _build_sites(self, args):
        hashes = HashCache(args.hash_cache or os.path.join(self.state_dir, "hashes.tsv"))

        def drive(site, name, url_name, hidden=False):
            d = Drive(_drive_id(site.path + name), name,
                      f"{site.web_url}/{url_name.replace(' ', '%20')}", site.id, self.store,
                      hashes, seed=site.path + "/" + url_name, hidden=hidden)
            site.drives.append(d)
            self.drives[d.id] = d
            return d

        root = Site("/", "root", "Contoso")
        finance = Site("/sites/Finance", "Finance", "Finance Team")
        ops = Site("/teams/Ops", "Ops", "Operations")
        self.sites = [root, finance, ops]

        dataset_dir = args.dataset
        if not dataset_dir:
            dataset_dir = os.path.join(self.state_dir, "dataset")
            if not os.path.isdir(dataset_dir) or not os.listdir(dataset_dir):
                dataset.generate(dataset_dir, args.profile, args.seed, args.large_size, args.many)
        drive(finance, "Documents", "Shared Documents").import_tree(dataset_dir)
        archive = drive(finance, "Reports Archive", "Reports Archive")
        with archive.lock:
            folder = archive.create(archive.items[archive.root_id], "2019", folder=True)
            archive.create(folder, "annual.csv", b"year,total\n2019,1000\n")
        drive(finance, "Style Library", "Style Library", hidden=True)
        drive(root, "Documents", "Shared Documents")
        drive(ops, "Documents", "Shared Documents")
        return dataset_dir

    # ---- helpers used by the apps ----
    def log(self, msg):
        self.log_file.write(f"{time.strftime('%H:%M:%S')} {msg}\n")

    def graph_audiences(self):
        return {self.listeners["graph"].url, "https://graph.microsoft.com"}

    def find_site(self, host, path):
        if host.lower() != SITE_HOST:
            return None
        path = "/" + path.strip("/")
        return next((s for s in self.sites if s.path.lower() == path.lower()), None)

    def find_site_by_ref(self, ref):
        if ref in ("root", SITE_HOST):
            return self.sites[0]
        return next((s for s in self.sites if s.id.lower() == ref.lower()), None)

    def drive_for(self, body):
        drive_id = body.get("drive", self.state["drive_id"])
        if drive_id not in self.drives:
            raise KeyError(f"no drive {drive_id}")
        return self.drives[drive_id]

    def find_item(self, item_id):
        """(drive, item) for an id in any library, or None."""
        for d in self.drives.values():
            item = d.items.get(item_id)
            if item is not None:
                return d, item
        return None

    # ---- download URLs ----
    def download_url(self, item):
        """A fresh pre-authenticated URL for the item's current content.
        While a fault is armed on the download route, URLs point at the
        Python host even in nginx mode, since only it can inject faults."""
        base = self.content_url
        if self.nginx is not None and self.faults.pending("download"):
            base = self.python_content_url
        return self.urls.url(base, item)

    def expire_download_urls(self):
        self.urls.expire_all()
        if self.nginx is not None:
            self.nginx.rekey()

    # ---- the request log ----
    def request_log_snapshot(self):
        """The request log, with nginx's downloads merged in when it serves."""
        with self.lock:
            if self.nginx is not None:
                self.request_log.extend(self.nginx.drain_log())
                self.request_log.sort(key=lambda e: e["t"])
            return list(self.request_log)

    def record(self, listener, req, started):
        entry = {"t": started, "end": time.time(), "listener": listener.name,
                 "method": req.method, "path": req.raw_path, "route": req.route,
                 "status": req.status, "range": req.header("Range"),
                 "client_request_id": req.header("client-request-id"),
                 "authorization": bool(req.header("Authorization"))}
        if "retry_after" in req.extra_log:
            entry["retry_after"] = req.extra_log["retry_after"]
        if "body_fault" in req.extra_log:
            entry["fault"] = req.extra_log["body_fault"]["kind"]
        with self.lock:
            self.request_log.append(entry)

    # ---- lifecycle ----
    def run(self):
        """Serves until SIGTERM/SIGINT. state.json appears only once every
        listener (and nginx) answers, and is removed on the way out."""
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        state_path = os.path.join(self.state_dir, "state.json")
        try:
            for listener in self.listeners.values():
                listener.start()
            if self.nginx is not None:
                self.nginx.start()
            tmp = state_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.state, f, indent=2)
            os.replace(tmp, state_path)
            self.log(f"ready: {json.dumps({k: v for k, v in self.state.items() if k.endswith('url')})}")
            stop.wait()
        finally:
            if self.nginx is not None:
                self.nginx.stop()
            for listener in self.listeners.values():
                if listener.thread.is_alive():
                    listener.stop()
            try:
                os.unlink(state_path)
            except FileNotFoundError:
                pass
            self.log("stopped")


def _start_background(args, argv):
    state_path = os.path.join(args.state_dir, "state.json")
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    pid = _running_pid(state_path)
    if pid is not None:
        sys.stderr.write(f"an emulator (pid {pid}) already runs in {args.state_dir}\n")
        return 1
    if os.path.exists(state_path):
        os.unlink(state_path)  # left by a crashed emulator
    log_path = os.path.join(args.state_dir, "emulator.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv, "--foreground"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    deadline = time.time() + args.ready_timeout
    while time.time() < deadline:
        if os.path.exists(state_path):
            print(state_path)
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.terminate()
    sys.stderr.write(f"emulator failed to start; last lines of {log_path}:\n")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        sys.stderr.writelines(f.readlines()[-20:])
    return 1


def _running_pid(state_path):
    """The pid in state.json if that process is alive and is an emulator."""
    try:
        with open(state_path, encoding="utf-8") as f:
            pid = int(json.load(f)["pid"])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if b"emulator.py" in cmdline else None


def _proc_state(pid):
    """'gone', 'zombie' or 'running'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
    return "zombie" if state == b"Z" else "running"


def _wait_gone(pid, timeout):
    """Waits until pid has exited and, if possible, been reaped (callers
    check with kill -0). A zombie nobody reaps within the time counts as
    exited. False when it is still running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = _proc_state(pid)
        if state == "gone":
            return True
        time.sleep(0.02)
    return _proc_state(pid) != "running"


def _stop(args):
    state_path = os.path.join(args.state_dir, "state.json")
    pid = _running_pid(state_path)
    if pid is None:  # not running (or a stale state file from a crash)
        if os.path.exists(state_path):
            os.unlink(state_path)
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        os.unlink(state_path)
        return 0
    if not _wait_gone(pid, 10):
        sys.stderr.write(f"emulator pid {pid} ignored SIGTERM; killing it\n")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
    if os.path.exists(state_path):
        os.unlink(state_path)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description="spfs Graph/Entra/IMDS emulator")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start")
    st.add_argument("--state-dir", required=True)
    st.add_argument("--dataset", help="import this directory tree as the Finance library")
    st.add_argument("--profile", default="test", choices=["test", "demo", "bench"])
    st.add_argument("--seed", type=int, default=1)
    st.add_argument("--many", type=int, default=None)
    st.add_argument("--large-size", type=int, default=None)
    st.add_argument("--hash-cache", default=None, help="quickXorHash cache file to reuse")
    st.add_argument("--token-lifetime", type=int, default=3599)
    st.add_argument("--download-url-lifetime", type=float, default=3600)
    st.add_argument("--content-backend", choices=["python", "nginx"], default="python",
                    help="nginx: serve downloads with nginx (benchmarks); see emu_nginx.py")
    st.add_argument("--ready-timeout", type=float, default=120)
    st.add_argument("--foreground", action="store_true")
    sp = sub.add_parser("stop")
    sp.add_argument("--state-dir", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "stop":
        return _stop(args)
    if not args.foreground:
        return _start_background(args, argv)
    Emulator(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
