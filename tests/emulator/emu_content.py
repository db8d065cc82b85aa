"""The SharePoint download host: pre-authenticated, expiring download URLs.

URL scheme (PROTOCOL.md 5 and 7, shaped like download.aspx links):

    {content_url}/download/{item-id}/{version}?UniqueId={guid}&Translate=false
        &tempauth=v1.{exp}.{sig}&ApiVersion=2.0

`version` is the item's content version (cTag counter), so the bytes served
are those the URL was issued for, even after the item was modified. `sig`
is base64url(MD5("{exp}{path} {key}")) - exactly the form nginx's
secure_link_md5 verifies, so the Python host and the nginx backend
(emu_nginx.py) accept the same URLs. `key` changes when tests expire all
URLs early, which invalidates every URL issued before.
"""

import base64
import hashlib
import hmac
import html
import math
import mimetypes
import re
import threading
import time
import urllib.parse

from emu_http import send_bytes, send_error_json, send_file_range

DOWNLOAD_PATH = re.compile(r"/download/([A-Za-z0-9]+)/([0-9]+)")
TEMPAUTH = re.compile(r"v1\.([0-9]+)\.([A-Za-z0-9_-]+)")


class DownloadUrls:
    """Issues and checks tempauth-signed download URLs."""

    def __init__(self, secret: bytes, lifetime: float):
        self.secret = secret
        self.lifetime = float(lifetime)
        self.epoch = 0
        self.lock = threading.Lock()

    def key(self, epoch=None) -> str:
        epoch = self.epoch if epoch is None else epoch
        return hmac.new(self.secret, f"tempauth:{epoch}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def sign(path: str, exp: int, key: str) -> str:
        digest = hashlib.md5(f"{exp}{path} {key}".encode()).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(self, base: str, item) -> str:
        # Rounded up: a lifetime of 1 s must never yield an already-expired URL.
        exp = math.ceil(time.time() + self.lifetime)
        path = f"/download/{item.id}/{item.content_version}"
        return (f"{base}{path}?UniqueId={item.guid}&Translate=false"
                f"&tempauth=v1.{exp}.{self.sign(path, exp, self.key())}&ApiVersion=2.0")

    def valid(self, path: str, tempauth: str) -> bool:
        m = TEMPAUTH.fullmatch(tempauth or "")
        if not m:
            return False
        exp = int(m.group(1))
        if exp < time.time():
            return False
        return hmac.compare_digest(m.group(2), self.sign(path, exp, self.key()))

    def expire_all(self):
        with self.lock:
            self.epoch += 1


def parse_range(value, size):
    """(start, end) inclusive for a single 'bytes=' range, 'ignore' for a
    header we do not honour (served as 200, as RFC 9110 allows), or None
    when unsatisfiable (416)."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", value.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return "ignore"
    if m.group(1) == "":
        n = int(m.group(2))
        if n == 0 or size == 0:
            return None
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


class ContentApp:
    """The Python content host (download.aspx stand-in)."""

    def __init__(self, emu):
        self.emu = emu

    def handle(self, req):
        if req.raw_path == "/tree" or req.raw_path.startswith("/tree/"):
            return self._tree(req)
        m = DOWNLOAD_PATH.fullmatch(req.raw_path)
        if not m:
            return
        req.route = "download"
        if self.emu.faults.apply(req):
            return
        if req.method not in ("GET", "HEAD"):
            return send_error_json(req, 405, "notAllowed", "GET or HEAD only")
        if not self.emu.urls.valid(req.raw_path, req.query.get("tempauth")):
            # SharePoint answers an expired tempauth with 401 (PROTOCOL.md 7).
            return send_bytes(req, 401, b"<html><body>401 UNAUTHORIZED</body></html>",
                              content_type="text/html")
        item_id, version = m.group(1), int(m.group(2))
        found = self.emu.find_item(item_id)
        path = None
        if found:
            d, item = found
            with d.lock:
                path = d.version_path(item, version)
                current = version == item.content_version
                etag, name, modified = item.etag, item.name, item.modified
        if path is None:
            return send_bytes(req, 404, b"<html><body>404 FILE NOT FOUND</body></html>",
                              content_type="text/html")
        try:
            f = open(path, "rb")
        except FileNotFoundError:  # deleted between the lookup and now
            return send_bytes(req, 404, b"<html><body>404 FILE NOT FOUND</body></html>",
                              content_type="text/html")
        with f:
            size = self._size(f)
            headers = {"Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                       "Accept-Ranges": "bytes",
                       "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                      time.gmtime(modified))}
            if current:
                headers["ETag"] = etag
            fault = req.extra_log.get("page_fault") or {}
            if fault.get("what") == "claim_total":
                # A hostile host: the real bytes under a Content-Range
                # whose total claims far more (never believe a length).
                return self._send_ranged(req, f, size, headers, claim=int(fault["total"]))
            self._send_ranged(req, f, size, headers)

    def _tree(self, req):
        """The default library as a plain web tree, for benchmarks of tools
        that speak HTTP but not Graph (rclone's http backend): folders are
        HTML index pages of links, files their current bytes with Range.
        Unauthenticated; route "tree", so faults (latency) apply to it."""
        req.route = "tree"
        if self.emu.faults.apply(req):
            return
        if req.method not in ("GET", "HEAD"):
            return send_error_json(req, 405, "notAllowed", "GET or HEAD only")
        rel = urllib.parse.unquote(req.raw_path[len("/tree"):])
        d = self.emu.drive_for({})
        with d.lock:
            item = d.resolve_path(d.items[d.root_id], rel)
            if item is not None and item.is_folder:
                kids = sorted((d.items[c] for c in item.children), key=lambda i: i.name)
                links = "".join(
                    f'<a href="{html.escape(urllib.parse.quote(k.name))}{"/" if k.is_folder else ""}">'
                    f'{html.escape(k.name)}</a>\n' for k in kids if not k.deleted)
            elif item is not None:
                path = d.version_path(item, item.content_version)
                name, modified, etag = item.name, item.modified, item.etag
        if item is None or item.deleted:
            return send_bytes(req, 404, b"<html><body>404</body></html>", content_type="text/html")
        if item.is_folder:
            if not req.raw_path.endswith("/"):
                return send_bytes(req, 301, b"", {"Location": req.raw_path + "/"}, None)
            return send_bytes(req, 200, f"<html><body>\n{links}</body></html>\n".encode(),
                              content_type="text/html; charset=utf-8")
        with open(path, "rb") as f:
            size = self._size(f)
            headers = {"Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                       "Accept-Ranges": "bytes", "ETag": etag,
                       "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                      time.gmtime(modified))}
            self._send_ranged(req, f, size, headers)

    @staticmethod
    def _send_ranged(req, f, size, headers, claim=None):
        """The whole file (200), the Range asked for (206) or 416; claim:
        the total a hostile host states in Content-Range instead."""
        rng = req.header("Range") or (claim and "bytes=0-")
        span = parse_range(rng, size) if rng else "ignore"
        if span is None:
            headers["Content-Range"] = f"bytes */{claim or size}"
            return send_bytes(req, 416, b"", headers, None)
        if span == "ignore":
            return send_file_range(req, 200, f, 0, size, headers)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{claim or size}"
        send_file_range(req, 206, f, start, end - start + 1, headers)

    @staticmethod
    def _size(f):
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        return size
