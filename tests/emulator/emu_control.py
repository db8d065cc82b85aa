"""Control interface for tests (plain HTTP JSON on loopback).

Endpoints (all JSON; README.md documents the bodies):
  GET    /control/state            the state.json content
  GET    /control/requests         request log (?route=&since=)
  GET    /control/counters         requests per route
  POST   /control/reset            clear log, counters and token log
  GET    /control/token-requests   token requests: grant, method, assertion jti/iat/sub, result
  POST   /control/faults           add a fault; GET lists; DELETE clears (?id=N: one)
  POST   /control/download-urls    {"expire_now": true} and/or {"lifetime": seconds}
  POST   /control/token-lifetime   {"seconds": n}
  POST   /control/nextlink-lifetime {"seconds": n}
  POST   /control/mutate           create | mkdir | modify | delete | rename | move
  POST   /control/served-bytes     serve other bytes than listed for a path
  POST   /control/invalidate-delta all delta tokens answer 410 from now on
  POST   /control/outage           {"down": bool, "listeners"?}: services stop / restart
  POST   /control/federated-credentials  list | add | remove | clear | issuer-unreachable
  POST   /control/share            {"path"}: a sharing link to that item (/:f:/s/... for a folder)
  POST   /control/clients             register an app; optional site grants (Sites.Selected)
"""

import base64
import json
import random
import threading
import time

from emu_http import http_date, send_bytes, send_error_json, send_json

NON_GRAPH_ROUTES = ("token", "imds", "oidc", "download")
FAULT_KINDS = ("latency", "throttle", "status", "expired_token", "reset", "truncate", "malformed",
               "hostile", "slow", "patch")
# What a `hostile` fault does to a children or delta page (emu_graph.send_page).
HOSTILE = ("names", "fields", "nextlink_loop", "endless", "not_object", "no_value",
           "foreign_link", "cycle", "huge_empty", "endless_full", "root_child", "duplicates",
           "http_download", "claim_total")


class Faults:
    """Injected faults, matched per route; each fires for the next `count`
    matching requests, or on each with probability `rate`, or always."""

    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.items = []
        self.next_id = 1

    def add(self, body):
        if body.get("kind") not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if body["kind"] == "expired_token" and body.get("route", "*") in NON_GRAPH_ROUTES:
            raise ValueError("expired_token applies to Graph routes only")
        if body["kind"] == "hostile" and body.get("what") not in HOSTILE:
            raise ValueError(f"hostile faults need what = one of {HOSTILE}")
        if body["kind"] == "slow" and not float(body.get("bps", 0)) > 0:
            raise ValueError("slow faults need bps > 0 (bytes per second)")
        if body["kind"] == "patch" and not isinstance(body.get("set"), dict):
            raise ValueError("patch faults need set = an object of members")
        rate = body.get("rate")
        if rate is not None and not 0 <= float(rate) <= 1:
            raise ValueError("rate must be within 0..1")
        with self.lock:
            fault = {"id": self.next_id, "route": body.get("route", "*"),
                     "kind": body["kind"], "count": body.get("count"),
                     "rate": None if rate is None else float(rate),
                     "ms": body.get("ms", 0), "ms_max": body.get("ms_max"),
                     "status": body.get("status"),
                     "retry_after": body.get("retry_after", 1),
                     "retry_after_format": body.get("retry_after_format", "seconds"),
                     "ratelimit": body.get("ratelimit", False),
                     "after_bytes": body.get("after_bytes"), "what": body.get("what"),
                     "bps": body.get("bps"), "set": body.get("set"), "mib": body.get("mib"),
                     "items": body.get("items"), "folder": body.get("folder"),
                     "total": body.get("total")}
            self.next_id += 1
            self.items.append(fault)
        return fault

    def clear(self, fault_id=None):
        with self.lock:
            self.items = [f for f in self.items if fault_id is not None and f["id"] != fault_id]

    def list(self):
        with self.lock:
            return [dict(f) for f in self.items]

    @staticmethod
    def _matches(fault, route):
        r = fault["route"]
        return r in ("*", route) or (isinstance(r, list) and route in r)

    def pending(self, route):
        """Whether a fault may still fire on route (download URLs are then
        issued on the Python content host, which can act on it)."""
        with self.lock:
            return any(self._matches(f, route) and (f["count"] is None or f["count"] > 0)
                       for f in self.items)

    def apply(self, req):
        """Applies matching faults; True when a response was already sent."""
        fired = []
        with self.lock:
            for f in self.items:
                if not self._matches(f, req.route):
                    continue
                if f["count"] is not None:
                    if f["count"] <= 0:
                        continue
                    f["count"] -= 1
                elif f["rate"] is not None and random.random() >= f["rate"]:
                    continue
                fired.append(dict(f))
        for f in fired:
            kind = f["kind"]
            if kind == "latency":  # ms, or uniformly ms..ms_max
                time.sleep(random.uniform(f["ms"], f["ms_max"] or f["ms"]) / 1000.0)
            elif kind == "throttle":
                self._throttle(req, f)
                return True
            elif kind == "status":
                self._status(req, f["status"] or 500, {})
                return True
            elif kind == "expired_token":
                self.emu.graph_app.unauthorized(req, "Access token has expired or is not yet valid.")
                return True
            elif kind == "hostile":  # acts on the page, if the route sends one
                req.extra_log["page_fault"] = f
            elif kind == "patch":  # members set in a successful JSON answer
                req.extra_log["json_patch"] = f["set"]
            elif kind == "slow":  # the body trickles at bps bytes a second
                req.extra_log["slow_bps"] = float(f["bps"])
            else:  # reset, truncate, malformed: act while the body is sent
                req.extra_log["body_fault"] = f
        return False

    def _throttle(self, req, f):
        status = f["status"] or 429
        ra = f["retry_after"]
        value = http_date(time.time() + ra) if f["retry_after_format"] == "date" else str(int(ra))
        headers = {"Retry-After": value}
        if f["ratelimit"]:
            headers.update({"RateLimit-Limit": "1200", "RateLimit-Remaining": "0",
                            "RateLimit-Reset": str(int(ra))})
        req.extra_log["retry_after"] = ra
        self._status(req, status, headers)

    @staticmethod
    def _status(req, status, headers):
        """An error in the shape of the service the route belongs to."""
        if req.route in ("token", "imds", "oidc"):
            error = "temporarily_unavailable" if status in (429, 503) else "server_error"
            return send_json(req, status, {"error": error,
                                           "error_description": f"injected {status}"}, headers)
        if req.route == "download":
            return send_bytes(req, status, f"<html><body>{status}</body></html>".encode(),
                              headers, "text/html")
        code = {401: "unauthenticated", 403: "accessDenied", 404: "itemNotFound",
                429: "activityLimitReached",
                503: "serviceNotAvailable"}.get(status, "generalException")
        send_error_json(req, status, code, "The request has been throttled"
                        if status in (429, 503) else "injected failure", headers)


class ControlApp:
    """Dispatches /control/<name> to method_<name> (dashes as underscores)."""

    def __init__(self, emu):
        self.emu = emu

    def handle(self, req):
        if not req.raw_path.startswith("/control/"):
            return
        req.route = "control"
        name = req.raw_path[len("/control/"):]
        try:
            body = json.loads(req.body or b"{}")
        except json.JSONDecodeError:
            return send_json(req, 400, {"error": "body is not JSON"})
        fn = getattr(self, f"{req.method.lower()}_{name.replace('-', '_')}", None)
        if fn is None:
            return send_json(req, 404, {"error": f"no control endpoint {req.method} {name}"})
        try:
            result = fn(req, body)
        except (KeyError, ValueError, TypeError, OSError) as e:
            # FileExistsError/FileNotFoundError/IsADirectoryError are OSErrors.
            return send_json(req, 400, {"error": f"{type(e).__name__}: {e}"})
        except RuntimeError as e:  # e.g. nginx did not reload
            return send_json(req, 500, {"error": str(e)})
        send_json(req, 200, result if result is not None else {"ok": True})

    # ---- observation ----
    def get_state(self, req, body):
        return self.emu.state

    def get_requests(self, req, body):
        route = req.q("route")
        since = float(req.q("since", default="0"))
        return {"requests": [e for e in self.emu.request_log_snapshot()
                             if (route is None or e["route"] == route) and e["t"] >= since]}

    def get_counters(self, req, body):
        counts = {}
        for e in self.emu.request_log_snapshot():
            if e["route"] != "control":
                counts[e["route"]] = counts.get(e["route"], 0) + 1
        return counts

    def post_reset(self, req, body):
        self.emu.request_log_snapshot()  # consume nginx's log up to now
        with self.emu.lock:
            self.emu.request_log.clear()
        with self.emu.entra.lock:
            self.emu.entra.token_log.clear()

    def get_token_requests(self, req, body):
        with self.emu.entra.lock:
            return {"requests": list(self.emu.entra.token_log)}

    # ---- faults ----
    def post_faults(self, req, body):
        return {"id": self.emu.faults.add(body)["id"]}

    def get_faults(self, req, body):
        return {"faults": self.emu.faults.list()}

    def delete_faults(self, req, body):
        fid = req.q("id")
        self.emu.faults.clear(None if fid is None else int(fid))

    def post_download_urls(self, req, body):
        if body.get("expire_now"):
            self.emu.expire_download_urls()
        if "lifetime" in body:
            lifetime = float(body["lifetime"])
            if lifetime < 0:
                raise ValueError("lifetime must be >= 0")
            self.emu.urls.lifetime = lifetime
        return {"lifetime": self.emu.urls.lifetime, "epoch": self.emu.urls.epoch}

    # ---- Entra ----
    def post_token_lifetime(self, req, body):
        seconds = int(body["seconds"])
        if seconds < 1:
            raise ValueError("seconds must be >= 1")
        self.emu.entra.token_lifetime = seconds

    def post_federated_credentials(self, req, body):
        """op: list | add | remove | clear | issuer-unreachable."""
        ent = self.emu.entra
        client = body.get("client_id", ent.client_id)
        op = body.get("op", "list")
        audience = body.get("audience", "api://AzureADTokenExchange")
        if op == "clear":
            ent.clear_fics(client)
        elif op == "add":
            ent.add_fic(client, body["issuer"], body["subject"], audience)
        elif op == "remove":
            if not ent.remove_fic(client, body["issuer"], body["subject"], audience):
                raise KeyError("no such federated credential")
        elif op == "issuer-unreachable":
            ent.set_issuer_unreachable(body.get("issuer", self.emu.oidc_issuer),
                                       bool(body.get("value", True)))
        elif op != "list":
            raise ValueError("op must be list, add, remove, clear or issuer-unreachable")
        return {"federated_credentials": ent.list_fics(client),
                "unreachable_issuers": sorted(ent.unreachable_issuers)}

    def post_clients(self, req, body):
        """{"client_id", "sites"?: ["/sites/Finance", ...]}: registers an
        app (no secret, no certificate: federated credentials are added
        with /control/federated-credentials) and, with "sites", grants it
        exactly those sites (Sites.Selected); "sites": null lifts the
        restriction."""
        client = str(body["client_id"])
        ent = self.emu.entra
        if client not in ent.clients:
            ent.register_client(client)
        if "sites" in body:
            sites = body["sites"]
            if sites is None:
                self.emu.site_grants.pop(client, None)
            else:
                for path in sites:
                    if not any(s.path == path for s in self.emu.sites):
                        raise KeyError(f"no site {path}")
                self.emu.site_grants[client] = set(sites)
        grants = self.emu.site_grants.get(client)
        return {"client_id": client, "sites": sorted(grants) if grants is not None else None}

    # ---- Graph ----
    def post_nextlink_lifetime(self, req, body):
        self.emu.nextlink_lifetime = float(body["seconds"])

    def post_invalidate_delta(self, req, body):
        d = self.emu.drive_for(body)
        with d.lock:
            d.delta_epoch += 1

    @staticmethod
    def _content(body):
        if "content_b64" in body:
            return base64.b64decode(body["content_b64"], validate=True)
        if "text" in body:
            return body["text"].encode()
        if "size" not in body:
            raise KeyError("content_b64, text or size (+ seed) is required")
        return random.Random(body.get("seed", 0)).randbytes(int(body["size"]))

    def post_mutate(self, req, body):
        d = self.emu.drive_for(body)
        op = body["op"]
        path = body["path"].strip("/")
        graph = self.emu.graph_app
        with d.lock:
            root = d.items[d.root_id]
            if op in ("create", "mkdir"):
                parent_path, _, name = path.rpartition("/")
                parent = d.resolve_path(root, parent_path)
                if parent is None or not parent.is_folder:
                    raise FileNotFoundError(parent_path)
                item = d.create(parent, name, None if op == "mkdir" else self._content(body),
                                folder=op == "mkdir")
                return graph.item_json(d, item)
            item = d.resolve_path(root, path)
            if item is None or item is root:
                raise FileNotFoundError(path)
            if op == "modify":
                d.modify(item, self._content(body))
            elif op == "delete":
                d.delete(item)
                return {"id": item.id, "deleted": {}}
            elif op == "rename":
                d.rename(item, body["new_name"])
            elif op == "move":
                parent = d.resolve_path(root, body["new_parent"].strip("/"))
                if parent is None or not parent.is_folder:
                    raise FileNotFoundError(body["new_parent"])
                d.move(item, parent)
            else:
                raise ValueError(f"unknown op {op!r}")
            return graph.item_json(d, item)

    def post_outage(self, req, body):
        """{"down": true|false, "listeners"?: [...]}: the services stop (ports
        refuse, open connections are cut) or come back on the same ports.
        Default: every listener but control (and nginx, when it serves)."""
        names = body.get("listeners") or [n for n in self.emu.listeners if n != "control"]
        for n in names:
            if n == "control" or n not in self.emu.listeners:
                raise ValueError(f"no listener {n!r} to take down")
        for n in names:
            lst = self.emu.listeners[n]
            lst.go_down() if body.get("down", True) else lst.come_up()
        self.emu.log(f"outage: {', '.join(names)} {'down' if body.get('down', True) else 'up'}")
        return {"down": sorted(n for n, lst in self.emu.listeners.items() if lst.down)}

    def post_share(self, req, body):
        """{"path", "drive"?}: a sharing link to the item, as SharePoint's
        "Copy link" makes it: https://HOST/:K:/s/SITE/TOKEN?e=CODE, with K
        f for a folder, x for a workbook, u otherwise. Graph's shares
        endpoint resolves it."""
        d = self.emu.drive_for(body)
        with d.lock:
            item = d.resolve_path(d.items[d.root_id], body["path"].strip("/"))
            if item is None:
                raise FileNotFoundError(body["path"])
            kind = "f" if item.is_folder else ("x" if item.name.endswith(".xlsx") else "u")
            site = next(s for s in self.emu.sites if s.id == d.site_id)
            token = "E" + base64.urlsafe_b64encode(random.randbytes(33)).decode()
            link = f"{site.web_url.split('/sites/')[0].split('/teams/')[0]}/:{kind}:/s/{site.name}/{token}"
            self.emu.shares[link] = (d.id, item.id)
        return {"url": f"{link}?e={random.randbytes(4).hex()}"}

    def post_served_bytes(self, req, body):
        d = self.emu.drive_for(body)
        with d.lock:
            item = d.resolve_path(d.items[d.root_id], body["path"].strip("/"))
            if item is None or item.is_folder:
                raise FileNotFoundError(body["path"])
            if "append" in body:
                data = d.read_content(item) + random.Random(1).randbytes(int(body["append"]))
            else:
                data = self._content(body)
            d.set_served_bytes(item, data)
            return {"listed_size": item.size, "served_size": len(data)}
