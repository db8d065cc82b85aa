"""Control interface for tests (plain HTTP JSON on loopback).

Endpoints (all JSON; see README.md for bodies):
  GET    /control/state            the state.json content
  GET    /control/requests         request log (?route=&since=)
  GET    /control/counters         requests per route
  POST   /control/reset            clear log, counters and token log
  GET    /control/token-requests   token requests: grant, method, assertion jti/iat/sub, result
  POST   /control/faults           add a fault; DELETE /control/faults clears all
  POST   /control/download-urls    {"expire_now": true} and/or {"lifetime": seconds}
  POST   /control/token-lifetime   {"seconds": n}
  POST   /control/nextlink-lifetime {"seconds": n}
  POST   /control/mutate           create | mkdir | modify | delete | rename | move
  POST   /control/served-bytes     serve other bytes than listed for a path
  POST   /control/invalidate-delta all delta tokens answer 410 from now on
  POST   /control/federated-credentials  {"op": "clear"} | {"op": "add", "issuer", "subject"}
"""

import base64
import json
import random
import time

from emu_http import send_json


class ControlApp:
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
        except (KeyError, ValueError, FileExistsError, FileNotFoundError) as e:
            return send_json(req, 400, {"error": f"{type(e).__name__}: {e}"})
        send_json(req, 200, result if result is not None else {"ok": True})

    def get_state(self, req, body):
        return self.emu.state

    def get_requests(self, req, body):
        route = req.q("route")
        since = float(req.q("since", default="0"))
        with self.emu.lock:
            log = [e for e in self.emu.request_log
                   if (route is None or e["route"] == route) and e["t"] >= since]
        return {"requests": log}

    def get_counters(self, req, body):
        counts = {}
        with self.emu.lock:
            for e in self.emu.request_log:
                if e["route"] != "control":
                    counts[e["route"]] = counts.get(e["route"], 0) + 1
        return counts

    def post_reset(self, req, body):
        with self.emu.lock:
            self.emu.request_log.clear()
        with self.emu.entra.lock:
            self.emu.entra.token_log.clear()

    def get_token_requests(self, req, body):
        with self.emu.entra.lock:
            return {"requests": list(self.emu.entra.token_log)}

    def post_faults(self, req, body):
        kinds = ("latency", "throttle", "status", "expired_token", "reset", "truncate", "malformed")
        if body.get("kind") not in kinds:
            raise ValueError(f"kind must be one of {kinds}")
        fault = {"id": len(self.emu.faults) + 1, "route": body.get("route", "*"),
                 "kind": body["kind"], "count": body.get("count"), "rate": body.get("rate"),
                 "ms": body.get("ms", 0), "status": body.get("status"),
                 "retry_after": body.get("retry_after", 1),
                 "retry_after_format": body.get("retry_after_format", "seconds"),
                 "ratelimit": body.get("ratelimit", False),
                 "after_bytes": body.get("after_bytes")}
        with self.emu.lock:
            self.emu.faults.append(fault)
        return {"id": fault["id"]}

    def delete_faults(self, req, body):
        with self.emu.lock:
            self.emu.faults.clear()

    def post_download_urls(self, req, body):
        if body.get("expire_now"):
            self.emu.download_epoch += 1
        if "lifetime" in body:
            self.emu.download_url_lifetime = float(body["lifetime"])

    def post_token_lifetime(self, req, body):
        self.emu.entra.token_lifetime = int(body["seconds"])

    def post_nextlink_lifetime(self, req, body):
        self.emu.nextlink_lifetime = float(body["seconds"])

    def post_invalidate_delta(self, req, body):
        d = self.emu.drive_for(body)
        with d.lock:
            d.delta_epoch += 1

    def post_federated_credentials(self, req, body):
        ent = self.emu.entra
        client = body.get("client_id", ent.client_id)
        if body.get("op") == "clear":
            ent.clear_fics(client)
        elif body.get("op") == "add":
            ent.add_fic(client, body["issuer"], body["subject"],
                        body.get("audience", "api://AzureADTokenExchange"))
            ent.jwks_cache.clear()
        else:
            raise ValueError("op must be clear or add")

    @staticmethod
    def _content(body):
        if "content_b64" in body:
            return base64.b64decode(body["content_b64"])
        if "text" in body:
            return body["text"].encode()
        size = int(body.get("size", 0))
        return random.Random(body.get("seed", time.time())).randbytes(size)

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
