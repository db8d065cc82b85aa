"""Microsoft Graph v1.0 drive API and the SharePoint content host.

Routes (PROTOCOL.md sections 4-9): sites by path/id, site drives, drives,
root, items by id and by path (':' addressing, percent-decoding,
case-insensitive), children with $top/$select and expiring nextLinks,
/content -> 302 to a pre-authenticated download URL on the content host,
Range on the content host, /root/delta with nextLink/deltaLink, token=latest
and 410 resyncRequired. Every Graph route requires a valid bearer token.
"""

import base64
import hashlib
import hmac
import json
import mimetypes
import os
import re
import time
import urllib.parse

from emu_crypto import JwtError, jwt_verify
from emu_http import send_error_json, send_file_range, send_json, send_bytes
from emu_model import iso

SELECT_ALWAYS = ("id",)
MAX_TOP = 1000
DEFAULT_TOP = 200


def _sign(secret: bytes, text: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, text.encode(), hashlib.sha256)
                                    .digest()[:18]).decode().rstrip("=")


def _pack(secret, obj) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
    return raw + "." + _sign(secret, raw)


def _unpack(secret, token):
    try:
        raw, sig = token.rsplit(".", 1)
        if not hmac.compare_digest(sig, _sign(secret, raw)):
            return None
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None


class GraphApp:
    def __init__(self, emu):
        self.emu = emu
        self.secret = emu.secret

    # ---- auth ----
    def _authorized(self, req):
        authz = req.header("Authorization") or ""
        if not authz.startswith("Bearer "):
            self._unauthorized(req, "Access token is empty.")
            return False
        token = authz[7:].strip()
        try:
            _, claims = jwt_verify(token, self.emu.entra.token_keys())
        except JwtError:
            self._unauthorized(req, "CompactToken validation failed.")
            return False
        now = time.time()
        if claims.get("exp", 0) <= now or claims.get("nbf", 0) > now + 300:
            self._unauthorized(req, "Access token has expired or is not yet valid.")
            return False
        if claims.get("aud") not in self.emu.graph_audiences():
            self._unauthorized(req, "Invalid audience.")
            return False
        if token in self.emu.revoked_tokens:
            self._unauthorized(req, "Access token has been revoked.")
            return False
        return True

    def _unauthorized(self, req, message):
        send_error_json(req, 401, "InvalidAuthenticationToken", message, headers={
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'})

    # ---- dispatch ----
    def handle(self, req):
        path = req.raw_path
        if not path.startswith("/v1.0/"):
            return
        rest = path[len("/v1.0"):]
        route, fn, args = self._match(rest)
        req.route = route
        if self.emu.apply_faults(req):
            return
        if fn is None:
            send_error_json(req, 400, "invalidRequest", f"Invalid request: {rest}")
            return
        if not self._authorized(req):
            return
        if req.method not in ("GET", "HEAD"):
            send_error_json(req, 405, "notAllowed", "The emulator is read-only through Graph.")
            return
        fn(req, *args)

    def _match(self, rest):
        m = re.fullmatch(r"/sites/([^/:]+):(/.*?)(?::)?", rest)
        if m:
            return "site", self.site_by_path, (urllib.parse.unquote(m.group(1)),
                                               urllib.parse.unquote(m.group(2)))
        # Routes that take one id.
        for pattern, route, fn in ((r"/sites/([^/]+)", "site", self.site_by_id),
                                   (r"/sites/([^/]+)/drives", "drives", self.site_drives),
                                   (r"/sites/([^/]+)/drive", "drive", self.site_drive),
                                   (r"/drives/([^/]+)", "drive", self.drive)):
            m = re.fullmatch(pattern, rest)
            if m:
                return route, fn, (urllib.parse.unquote(m.group(1)),)
        m = re.fullmatch(r"/drives/([^/]+)/root/delta(?:\(token='([^']*)'\))?", rest)
        if m:
            return "delta", self.delta, (urllib.parse.unquote(m.group(1)), m.group(2))
        m = re.fullmatch(r"/drives/([^/]+)/(root|items/[^/:]+)(?::(/[^:]*)(?::)?(/children|/content)?)?"
                         r"(/children|/content)?", rest)
        if m:
            drive_id = urllib.parse.unquote(m.group(1))
            base = m.group(2)
            relpath = m.group(3)
            tail = m.group(4) or m.group(5) or ""
            if relpath is not None and m.group(5):
                # "/root:/a/b/children" without the closing colon is a path.
                return "item_by_path", None, ()
            route = {"": "item_by_path" if relpath is not None else ("root" if base == "root" else "item"),
                     "/children": "children", "/content": "content"}[tail]
            item_ref = "root" if base == "root" else urllib.parse.unquote(base[6:])
            return route, self.item_op, (drive_id, item_ref,
                                         urllib.parse.unquote(relpath) if relpath else None, tail)
        return "unknown", None, ()

    # ---- sites and drives ----
    def site_by_path(self, req, host, path):
        site = self.emu.find_site(host, path)
        if not site:
            return send_error_json(req, 404, "itemNotFound", "Requested site could not be found")
        send_json(req, 200, site.json())

    def site_by_id(self, req, ref):
        site = self.emu.find_site_by_ref(ref)
        if not site:
            return send_error_json(req, 404, "itemNotFound", "Requested site could not be found")
        send_json(req, 200, site.json())

    def site_drives(self, req, ref):
        site = self.emu.find_site_by_ref(ref)
        if not site:
            return send_error_json(req, 404, "itemNotFound", "Requested site could not be found")
        select = self._select(req)
        drives = [d for d in site.drives if not d.hidden or (select and "system" in select)]
        send_json(req, 200, {"@odata.context": f"{self.emu.graph_url}/$metadata#drives",
                             "value": [self._pick(self.drive_json(d), select) for d in drives]})

    def site_drive(self, req, ref):
        site = self.emu.find_site_by_ref(ref)
        if not site:
            return send_error_json(req, 404, "itemNotFound", "Requested site could not be found")
        send_json(req, 200, self._pick(self.drive_json(site.drives[0]), self._select(req)))

    def drive(self, req, drive_id):
        d = self.emu.drives.get(drive_id)
        if not d:
            return send_error_json(req, 404, "itemNotFound", "The drive could not be found")
        send_json(req, 200, self._pick(self.drive_json(d), self._select(req)))

    def drive_json(self, d):
        with d.lock:
            used = self.emu_size(d)
        out = {"id": d.id, "driveType": "documentLibrary", "name": d.name,
               "description": "", "webUrl": d.web_url,
               "createdDateTime": iso(d.created), "lastModifiedDateTime": iso(d.created),
               "createdBy": {"user": {"displayName": "System Account"}},
               "owner": {"group": {"displayName": "Finance Owners"}},
               "quota": {"deleted": 0, "remaining": d.quota_total - used, "state": "normal",
                         "total": d.quota_total, "used": used}}
        if d.hidden:
            out["system"] = {}
        return out

    @staticmethod
    def emu_size(d):
        return sum(i.size for i in d.items.values() if not i.deleted and not i.is_folder)

    # ---- items ----
    def _select(self, req):
        sel = req.q("$select", "select")
        if sel is None:
            return None
        return [s.strip() for s in sel.split(",") if s.strip()]

    @staticmethod
    def _pick(obj, select):
        if not select:
            return obj
        keep = set(select) | set(SELECT_ALWAYS)
        return {k: v for k, v in obj.items() if k in keep}

    def item_json(self, d, item, select=None, in_delta=False):
        if item.deleted:
            parent = d.items.get(item.parent_id)
            return {"id": item.id, "deleted": {},
                    "parentReference": {"driveId": d.id, "driveType": "documentLibrary",
                                        "id": parent.id if parent else None}}
        path = d.path_of(item)
        web = d.web_url + ("/" + urllib.parse.quote(path) if path else "")
        user = {"user": {"email": "megan@contoso.example", "id": "48d31887-5fad-4d73-a9f5-3c356e68a038",
                         "displayName": "Megan Bowen"}}
        out = {"createdDateTime": iso(item.created), "eTag": item.etag, "id": item.id,
               "lastModifiedDateTime": iso(item.modified), "name": item.name,
               "webUrl": web, "size": d.folder_size(item) if item.is_folder else item.size,
               "createdBy": user, "lastModifiedBy": user,
               "fileSystemInfo": {"createdDateTime": iso(item.created),
                                  "lastModifiedDateTime": iso(item.modified)}}
        if item.parent_id is None:
            out["root"] = {}
            out["parentReference"] = {"driveId": d.id, "driveType": "documentLibrary"}
        else:
            parent = d.items[item.parent_id]
            ppath = d.path_of(parent)
            ref = {"driveId": d.id, "driveType": "documentLibrary", "id": parent.id,
                   "siteId": d.site_id}
            if not in_delta:
                ref["path"] = f"/drives/{d.id}/root:" + (f"/{ppath}" if ppath else "")
            out["parentReference"] = ref
        if item.is_folder:
            out["folder"] = {"childCount": len(item.children)}
        else:
            if not in_delta:
                out["cTag"] = item.ctag  # SharePoint delta omits cTag on creates/modifies
            mime = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
            out["file"] = {"mimeType": mime,
                           "hashes": {"quickXorHash": item.quickxorhash(d.hashes)}}
            if select is None or "@microsoft.graph.downloadUrl" in select:
                out = {"@microsoft.graph.downloadUrl": self.emu.download_url(d, item), **out}
        return self._pick(out, select)

    def _item(self, req, d, item_ref, relpath):
        if item_ref == "root":
            item = d.items[d.root_id]
        else:
            item = d.items.get(item_ref)
            if item is None or item.deleted:
                return None
        if relpath is not None:
            item = d.resolve_path(item, relpath)
        return item

    def item_op(self, req, drive_id, item_ref, relpath, tail):
        d = self.emu.drives.get(drive_id)
        if not d:
            return send_error_json(req, 404, "itemNotFound", "The drive could not be found")
        with d.lock:
            item = self._item(req, d, item_ref, relpath)
            if item is None:
                return send_error_json(req, 404, "itemNotFound", "The resource could not be found.")
            if tail == "/children":
                return self.children(req, d, item)
            if tail == "/content":
                if item.is_folder:
                    return send_error_json(req, 400, "invalidRequest", "A folder has no content")
                send_bytes(req, 302, b"", {"Location": self.emu.download_url(d, item)}, None)
                return
            inm = req.header("If-None-Match")
            if inm and inm in (item.etag, item.ctag):
                return send_bytes(req, 304, b"", {"ETag": item.etag}, None)
            send_json(req, 200, self.item_json(d, item, self._select(req)), {"ETag": item.etag})

    def children(self, req, d, item):
        if not item.is_folder:
            return send_json(req, 200, {"value": []})
        select = self._select(req)
        skiptoken = req.q("$skiptoken", "skiptoken")
        top_raw = req.q("$top", "top")
        try:
            top = DEFAULT_TOP if top_raw is None else int(top_raw)
        except ValueError:
            return send_error_json(req, 400, "invalidRequest", "Invalid $top")
        if top < 1 or top > MAX_TOP:
            return send_error_json(req, 400, "invalidRequest", f"$top must be 1..{MAX_TOP}")
        offset = 0
        if skiptoken:
            st = _unpack(self.secret, skiptoken)
            if not st or st.get("p") != item.id:
                return send_error_json(req, 400, "invalidRequest", "Invalid skip token")
            if st["x"] < time.time():
                return send_error_json(req, 400, "invalidRequest", "The skip token has expired")
            offset = st["o"]
        kids = sorted((d.items[c] for c in item.children), key=lambda i: i.name.casefold())
        page = kids[offset:offset + top]
        body = {"@odata.context": f"{self.emu.graph_url}/$metadata#Collection(driveItem)",
                "value": [self.item_json(d, k, select) for k in page]}
        if offset + top < len(kids):
            token = _pack(self.secret, {"p": item.id, "o": offset + top,
                                        "x": time.time() + self.emu.nextlink_lifetime})
            q = {"$top": str(top)}
            if select is not None:
                q["$select"] = ",".join(select)
            q["$skiptoken"] = token
            body["@odata.nextLink"] = (f"{self.emu.graph_url}/drives/{d.id}/items/{item.id}/children?"
                                       + urllib.parse.urlencode(q, safe="$,@."))
        send_json(req, 200, body)

    # ---- delta ----
    def delta(self, req, drive_id, fn_token):
        d = self.emu.drives.get(drive_id)
        if not d:
            return send_error_json(req, 404, "itemNotFound", "The drive could not be found")
        token = fn_token if fn_token is not None else req.q("token")
        select = self._select(req)
        page_token = req.q("$skiptoken")
        with d.lock:
            base = f"{self.emu.graph_url}/drives/{d.id}/root/delta"
            if token == "latest" and not page_token:
                return send_json(req, 200, {"value": [], "@odata.deltaLink":
                                            f"{base}?token={_pack(self.secret, {'s': d.seq, 'e': d.delta_epoch})}"})
            if page_token:
                st = _unpack(self.secret, page_token)
                if not st or st.get("e") != d.delta_epoch:
                    return self._resync(req, base)
                since, upto, offset = st["s"], st["u"], st["o"]
            else:
                since, offset, upto = 0, 0, d.seq
                if token:
                    st = _unpack(self.secret, token)
                    if not st or st.get("e") != d.delta_epoch:
                        return self._resync(req, base)
                    since = st["s"]
            ids = self._changed_ids(d, since, upto)
            top = DEFAULT_TOP
            page = ids[offset:offset + top]
            body = {"value": [self.item_json(d, d.items[i], select, in_delta=True) for i in page]}
            if offset + top < len(ids):
                st = {"s": since, "u": upto, "o": offset + top, "e": d.delta_epoch}
                body["@odata.nextLink"] = f"{base}?$skiptoken={_pack(self.secret, st)}"
            else:
                body["@odata.deltaLink"] = f"{base}?token={_pack(self.secret, {'s': upto, 'e': d.delta_epoch})}"
            send_json(req, 200, body)

    def _changed_ids(self, d, since, upto):
        """Latest state of every item changed in (since, upto], each once,
        ancestors before descendants. Incremental pages include the parent
        chain of changed items (as SharePoint does); a full enumeration
        (since == 0) leaves out what was deleted."""
        out, added = [], set()

        def add(item_id):
            if item_id not in added:
                added.add(item_id)
                out.append(item_id)

        for seq, item_id in d.changes:
            if not since < seq <= upto:
                continue
            item = d.items[item_id]
            if item.deleted:
                if since > 0:
                    add(item_id)
                continue
            for anc in reversed(d.ancestors(item)):
                add(anc.id)
            add(item_id)
        return out

    def _resync(self, req, base):
        send_error_json(req, 410, "resyncRequired",
                        "Resync required. Replace any local items with the server's version "
                        "(including deletes) if you're sure that the service was up to date with "
                        "your local changes when you last sync'd. Upload any local changes that "
                        "the server doesn't know about.",
                        headers={"Location": base})


class ContentApp:
    """The pre-authenticated download host (download.aspx stand-in)."""

    def __init__(self, emu):
        self.emu = emu

    def handle(self, req):
        m = re.fullmatch(r"/download/([^/]+)", req.raw_path)
        if not m:
            return
        req.route = "download"
        if self.emu.apply_faults(req):
            return
        if req.method not in ("GET", "HEAD"):
            return send_error_json(req, 405, "notAllowed", "GET or HEAD only")
        d, item = self.emu.check_download(m.group(1), req.query)
        if d is None:
            # SharePoint answers an expired tempauth with 401 (PROTOCOL.md 7).
            return send_bytes(req, 401, b"<html><body>401 UNAUTHORIZED</body></html>",
                              content_type="text/html")
        if item is None:
            return send_bytes(req, 404, b"<html><body>404 FILE NOT FOUND</body></html>",
                              content_type="text/html")
        with d.lock:
            path = item.served_path or item.content_path
            size = os.path.getsize(path)
            etag = item.etag
        mime = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        headers = {"Content-Type": mime, "Accept-Ranges": "bytes", "ETag": etag,
                   "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                  time.gmtime(item.modified))}
        rng = req.header("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                return send_file_range(req, 200, path, 0, size, headers)
            if m.group(1) == "":
                n = int(m.group(2))
                start, end = max(0, size - n), size - 1
            else:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else size - 1
            if start >= size or end < start:
                headers["Content-Range"] = f"bytes */{size}"
                return send_bytes(req, 416, b"", headers, None)
            end = min(end, size - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return send_file_range(req, 206, path, start, end - start + 1, headers)
        send_file_range(req, 200, path, 0, size, headers)
