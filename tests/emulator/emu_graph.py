"""Microsoft Graph v1.0 drive API.

Routes (PROTOCOL.md sections 4-9): sites by path/id, site drives, drives,
root, items by id and by path (':' addressing, percent-decoding,
case-insensitive), children with $top/$select and expiring nextLinks,
/content -> 302 to a pre-authenticated download URL on the separate content
host (emu_content.py), /root/delta with nextLink/deltaLink, token=latest and
410 resyncRequired. Every Graph route requires a valid bearer token.
"""

import base64
import hashlib
import hmac
import json
import mimetypes
import re
import time
import urllib.parse

from emu_crypto import JwtError, jwt_verify
from emu_http import send_bytes, send_error_json, send_json
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


# A field left out of a hostile item.
DROP = object()


class GraphApp:
    def __init__(self, emu):
        self.emu = emu
        self.secret = emu.secret
        self.endless_n = 0

    # ---- auth ----
    def _authorized(self, req):
        authz = req.header("Authorization") or ""
        if not authz.startswith("Bearer "):
            self.unauthorized(req, "Access token is empty.")
            return False
        token = authz[7:].strip()
        try:
            _, claims = jwt_verify(token, self.emu.entra.token_keys())
        except JwtError:
            self.unauthorized(req, "CompactToken validation failed.")
            return False
        now = time.time()
        if claims.get("exp", 0) <= now or claims.get("nbf", 0) > now + 300:
            self.unauthorized(req, "Access token has expired or is not yet valid.")
            return False
        if claims.get("aud") not in self.emu.graph_audiences():
            self.unauthorized(req, "Invalid audience.")
            return False
        req.claims = claims
        return True

    def _site_of(self, fn, args):
        """The site a routed request reads, or None when it names none
        that exists (the route answers 404 itself)."""
        if fn == self.site_by_path:
            return self.emu.find_site(*args)
        if fn in (self.site_by_id, self.site_drives, self.site_drive):
            return self.emu.find_site_by_ref(args[0])
        if fn in (self.drive, self.delta, self.item_op):
            d = self.emu.drives.get(args[0])
            return self.emu.find_site_by_ref(d.site_id) if d else None
        return None

    def _granted(self, req, fn, args):
        """Sites.Selected: an app with grants reads only those sites (403
        accessDenied elsewhere, as Graph answers); apps without grants
        registered read every site."""
        grants = self.emu.site_grants.get(req.claims.get("appid"))
        site = self._site_of(fn, args)
        return grants is None or site is None or site.path in grants

    def unauthorized(self, req, message):
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
        if self.emu.faults.apply(req):
            return
        if fn is None:
            send_error_json(req, 400, "invalidRequest", f"Invalid request: {rest}")
            return
        if not self._authorized(req):
            return
        if not self._granted(req, fn, args):
            send_error_json(req, 403, "accessDenied", "Access denied")
            return
        if req.method not in ("GET", "HEAD"):
            send_error_json(req, 405, "notAllowed", "The emulator is read-only through Graph.")
            return
        fn(req, *args)

    def _match(self, rest):
        m = re.fullmatch(r"/sites/([^/:]+)/drive(/(?:root|items/).*)", rest)
        if m:  # /sites/{id}/drive/root/delta etc.: the site's default library
            site = self.emu.find_site_by_ref(urllib.parse.unquote(m.group(1)))
            if site is None:
                return "drive", self._site_not_found, ()
            rest = f"/drives/{site.drives[0].id}{m.group(2)}"
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
        m = re.fullmatch(r"/shares/([^/]+)/driveItem", rest)
        if m:  # a sharing link, encoded as u! + base64url (PROTOCOL: shares)
            return "shares", self.shared_item, (urllib.parse.unquote(m.group(1)),)
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
    def _site_not_found(self, req):
        send_error_json(req, 404, "itemNotFound", "Requested site could not be found")

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
        """driveItem as SharePoint returns it; in delta without
        parentReference.path, cTag, createdBy and lastModifiedBy (ODB release
        notes, PROTOCOL.md 8)."""
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
               **({} if in_delta else {"createdBy": user, "lastModifiedBy": user}),
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
                out = {"@microsoft.graph.downloadUrl": self.emu.download_url(item), **out}
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
                send_bytes(req, 302, b"", {"Location": self.emu.download_url(item)}, None)
                return
            inm = req.header("If-None-Match")
            if inm and inm in (item.etag, item.ctag):
                return send_bytes(req, 304, b"", {"ETag": item.etag}, None)
            send_json(req, 200, self.item_json(d, item, self._select(req)), {"ETag": item.etag})

    def shared_item(self, req, share_id):
        """GET /shares/{u!base64url(link)}/driveItem: the item a sharing link
        made with /control/share points at; the link's query is ignored."""
        if self.emu.site_grants.get(req.claims.get("appid")) is not None:
            # An app confined to granted sites (Sites.Selected) may not
            # resolve links: the shares API wants tenant-wide file access.
            return send_error_json(req, 403, "accessDenied", "Access denied")
        link = None
        if share_id.startswith("u!"):
            enc = share_id[2:]
            try:
                link = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode()
            except ValueError:
                link = None
        found = self.emu.shares.get(link.split("?")[0]) if link else None
        if found is None:
            return send_error_json(req, 404, "itemNotFound",
                                   "The sharing link no longer exists, or you do not have "
                                   "permission to access it.")
        d = self.emu.drives[found[0]]
        with d.lock:
            item = d.items.get(found[1])
            if item is None or item.deleted:
                return send_error_json(req, 404, "itemNotFound", "The resource could not be found.")
            send_json(req, 200, self.item_json(d, item, self._select(req)))

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
        self.send_page(req, d, item.id, body)

    # ---- delta ----
    def delta(self, req, drive_id, fn_token):
        """One delta page. Both links carry a single opaque `token` (the shape
        seen from SharePoint: .../root/delta?token=...) plus the caller's
        $select/$top, so following them verbatim keeps the projection."""
        d = self.emu.drives.get(drive_id)
        if not d:
            return send_error_json(req, 404, "itemNotFound", "The drive could not be found")
        token = fn_token if fn_token is not None else req.q("token", "$deltatoken")
        select = self._select(req)
        top_raw = req.q("$top", "top")
        try:
            top = DEFAULT_TOP if top_raw is None else int(top_raw)
        except ValueError:
            return send_error_json(req, 400, "invalidRequest", "Invalid $top")
        if not 1 <= top <= MAX_TOP:
            return send_error_json(req, 400, "invalidRequest", f"$top must be 1..{MAX_TOP}")
        base = f"{self.emu.graph_url}/drives/{d.id}/root/delta"
        keep = {}
        if select is not None:
            keep["$select"] = ",".join(select)
        if top_raw is not None:
            keep["$top"] = str(top)

        def link(state):
            q = dict(keep, token=_pack(self.secret, dict(state, e=d.delta_epoch)))
            return f"{base}?" + urllib.parse.urlencode(q, safe="$,@.")

        with d.lock:
            if token == "latest":
                return self.send_page(req, d, d.root_id,
                                      {"value": [], "@odata.deltaLink": link({"s": d.seq})})
            since, upto, offset = 0, d.seq, 0
            if token:
                st = _unpack(self.secret, token)
                if not st or st.get("e") != d.delta_epoch:
                    return self._resync(req, base)
                since = st["s"]
                if "u" in st:  # a nextLink: continue the same snapshot
                    upto, offset = st["u"], st["o"]
            ids = self._changed_ids(d, since, upto)
            page = [d.items[i] for i in ids[offset:offset + top]]
            if since == 0:
                page = [i for i in page if not i.deleted]
            body = {"@odata.context": f"{self.emu.graph_url}/$metadata#Collection(driveItem)",
                    "value": [self.item_json(d, i, select, in_delta=True) for i in page]}
            if offset + top < len(ids):
                body["@odata.nextLink"] = link({"s": since, "u": upto, "o": offset + top})
            else:
                body["@odata.deltaLink"] = link({"s": upto})
            self.send_page(req, d, d.root_id, body)

    def send_page(self, req, d, parent_id, body):
        """Sends a collection page, spoiled as an armed `hostile` fault says:
        items no client should accept (names that cannot be file names, fields
        of the wrong type or missing), a nextLink to the page itself, fresh
        empty pages without end, or a body of the wrong shape."""
        fault = req.extra_log.get("page_fault")
        if fault and fault.get("folder") is not None:
            # Only the pages of this folder (a path below the library
            # root; "" is the root) are spoiled.
            target = d.resolve_path(d.items[d.root_id], fault["folder"].strip("/"))
            if target is None or target.id != parent_id:
                fault = None
        if not fault:
            return send_json(req, 200, body)
        what = fault["what"]
        req.extra_log["body_fault"] = {"kind": "hostile:" + what}
        parent = {"driveId": d.id, "driveType": "documentLibrary", "id": parent_id}

        def fake(n, **kw):
            base = {"id": f"HOSTILE{n:04d}", "name": f"hostile-{n}.txt", "size": 3,
                    "eTag": f'"{{HOSTILE{n}}},1"', "cTag": f'"c:{{HOSTILE{n}}},1"',
                    "lastModifiedDateTime": "2026-01-02T03:04:05Z",
                    "parentReference": parent, "file": {"mimeType": "text/plain"}}
            base.update(kw)
            return {k: v for k, v in base.items() if v is not DROP}

        if what == "names":
            body["value"] += [fake(1, name="a/b.csv"), fake(2, name="nul\u0000.csv"),
                              fake(3, name="."), fake(4, name=".."), fake(5, name="x" * 256),
                              fake(6, name="BADUTF8-@@FFFE@@.csv"), fake(7, name="")]
        elif what == "fields":
            body["value"] += [fake(11, id=DROP, name="no-id.csv"), fake(12, name=DROP),
                              fake(13, name="negative.csv", size=-5),
                              fake(14, name="string-size.csv", size="12"),
                              fake(15, name="float-size.csv", size=1e30),
                              fake(16, name="bad-time.csv", lastModifiedDateTime="yesterday"),
                              fake(17, id=17, name="int-id.csv"),
                              fake(18, name=["list-name.csv"]),
                              fake(19, name="etag-object.csv", eTag={"x": 1}),
                              fake(20, name="huge.csv", size=2**63 - 1),
                              fake(21, name="past-int64.csv", size=2**63),
                              "a string", 42, None, []]
        elif what == "nextlink_loop":
            body.pop("@odata.deltaLink", None)
            body["@odata.nextLink"] = self._link_to(req.raw_path, req.raw_query)
        elif what == "endless":
            body = {"value": [], "@odata.nextLink": self._fresh_link(req)}
        elif what == "not_object":
            body = [body]
        elif what == "no_value":
            body = {"value": "none", "@odata.nextLink": None}
        elif what == "foreign_link":
            # The page's link, or a nextLink to this page, moved to another
            # origin (the download host: TLS with our CA, so a client that
            # followed it would connect and send what it sends to Graph).
            key = "@odata.deltaLink" if "@odata.deltaLink" in body else "@odata.nextLink"
            link = body.get(key) or self._link_to(req.raw_path, req.raw_query)
            u = urllib.parse.urlsplit(link)
            other = urllib.parse.urlsplit(self.emu.python_content_url)
            body[key] = urllib.parse.urlunsplit((other.scheme, other.netloc, u.path, u.query, ""))
        elif what == "cycle":
            body["value"] += self._cycle_items(d, parent_id, req.route == "delta")
        elif what == "huge_empty":
            # A page of empty objects: tiny as text, huge as a parse tree.
            n = int(float(fault.get("mib") or 60) * (1 << 20)) // 3
            data = b'{"value":[' + b"{}," * (n - 1) + b"{}]}"
            return send_bytes(req, 200, data, None, "application/json; charset=utf-8")
        elif what == "endless_full":
            # Pages of new, valid items with a fresh nextLink each time,
            # without end.
            self.endless_n += 1
            page, count = self.endless_n, int(fault.get("items") or 1000)
            body = {"value": [fake(0, id=f"ENDLESS{page:06d}{i:05d}",
                                   name=f"endless-{page:06d}-{i:05d}.txt",
                                   eTag=f'"{{ENDLESS{page}-{i}}},1"',
                                   cTag=f'"c:{{ENDLESS{page}-{i}}},1"')
                              for i in range(count)],
                    "@odata.nextLink": self._fresh_link(req)}
        elif what == "root_child":
            body["value"] += [fake(31, name="a/b", root={}, folder={"childCount": 0}),
                              fake(32, name="", root={}),
                              fake(33, name="rooty", root={}, folder={"childCount": 0})]
        elif what == "duplicates":
            # Same names, other ids: an older twin of the first real item,
            # and two strangers that differ by their times; one name
            # carries a terminal escape and a newline for the log line.
            first = next((v for v in body["value"] if "file" in v), None)
            if first:
                body["value"].append(fake(41, name=first["name"],
                                          lastModifiedDateTime="2001-01-01T00:00:00Z",
                                          fileSystemInfo={"lastModifiedDateTime":
                                                          "2001-01-01T00:00:00Z"}))
            body["value"] += [fake(42, name="twin\u001b[31m\n.txt", size=1,
                                   lastModifiedDateTime="2020-01-01T00:00:00Z"),
                              fake(43, name="twin\u001b[31m\n.txt", size=2,
                                   lastModifiedDateTime="2024-01-01T00:00:00Z")]
        elif what == "http_download":
            for v in body["value"]:
                url = v.get("@microsoft.graph.downloadUrl")
                if url:
                    v["@microsoft.graph.downloadUrl"] = "http://" + url.split("://", 1)[1]
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        # JSON cannot carry bytes that are not UTF-8; put them in by hand.
        data = data.replace(b"@@FFFE@@", b"\xff\xfe")
        send_bytes(req, 200, data, None, "application/json; charset=utf-8")

    def _cycle_items(self, d, parent_id, in_delta):
        """Items that would close a parent loop. In a children page: the
        folder itself and its parent, as children of the folder. In delta:
        the first folder with a subfolder, moved below that subfolder."""
        def folder_item(item, parent, name=None):
            return {"id": item.id, "name": name or item.name,
                    "eTag": item.etag, "lastModifiedDateTime": iso(item.modified),
                    "folder": {"childCount": len(item.children)},
                    "parentReference": {"driveId": d.id, "driveType": "documentLibrary",
                                        "id": parent}}
        if not in_delta:
            me = d.items[parent_id]
            out = [folder_item(me, me.id, "self-loop")]
            if me.parent_id is not None:
                out.append(folder_item(d.items[me.parent_id], me.id, "parent-loop"))
            return out
        root = d.items[d.root_id]
        for cid in sorted(root.children, key=lambda c: d.items[c].name):
            c = d.items[cid]
            subs = sorted((d.items[s] for s in c.children if d.items[s].is_folder),
                          key=lambda s: s.name)
            if c.is_folder and subs:
                return [folder_item(c, subs[0].id)]
        return []

    def _fresh_link(self, req):
        """A link to the same request with a new counter: never seen before."""
        self.endless_n += 1
        q = [(k, v) for k, v in urllib.parse.parse_qsl(req.raw_query, keep_blank_values=True)
             if k != "emu_page"] + [("emu_page", str(self.endless_n))]
        return self._link_to(req.raw_path, urllib.parse.urlencode(q, safe="$,@."))

    def _link_to(self, raw_path, raw_query):
        origin = urllib.parse.urlsplit(self.emu.graph_url)
        return urllib.parse.urlunsplit((origin.scheme, origin.netloc, raw_path, raw_query, ""))

    def _changed_ids(self, d, since, upto):
        """Every item changed in (since, upto], each once, ancestors before
        descendants; incremental pages include the parent chain of changed
        items (as SharePoint does). Deleted items stay in the list so page
        offsets are stable while a client pages; the page renderer leaves
        them out of a full enumeration (since == 0)."""
        out, added = [], set()

        def add(item_id):
            if item_id not in added:
                added.add(item_id)
                out.append(item_id)

        for seq, item_id in d.changes:
            if not since < seq <= upto:
                continue
            item = d.items[item_id]
            if not item.deleted:
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

