#!/usr/bin/env python3
"""Client for the emulator's control interface and state file.

Library:
    emu = Emu("DIR/state.json")
    emu.counters(); emu.fault(route="children", kind="throttle", count=2, retry_after=2)
    emu.mutate("create", "reports/new.csv", text="a,b\\n")
CLI:
    emuctl.py --state DIR/state.json get KEY
    emuctl.py --state DIR/state.json counters | requests [ROUTE] | token-requests | reset
    emuctl.py --state DIR/state.json fault KIND [ROUTE] [key=value ...]
    emuctl.py --state DIR/state.json mutate OP PATH [key=value ...]
    emuctl.py --state DIR/state.json call METHOD ENDPOINT [JSON]
"""

import json
import os
import sys
import urllib.error
import urllib.request


class Emu:
    def __init__(self, state_path):
        if os.path.isdir(state_path):
            state_path = os.path.join(state_path, "state.json")
        with open(state_path, encoding="utf-8") as f:
            self.state = json.load(f)
        self.control = self.state["control_url"]

    def __getitem__(self, key):
        return self.state[key]

    def call(self, method, endpoint, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.control}/control/{endpoint}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"control {method} {endpoint}: {e.code} {e.read().decode()}") from None

    def counters(self):
        return self.call("GET", "counters")

    def requests(self, route=None, since=0):
        q = [f"since={since}"] + ([f"route={route}"] if route else [])
        return self.call("GET", "requests?" + "&".join(q))["requests"]

    def token_requests(self):
        return self.call("GET", "token-requests")["requests"]

    def reset(self):
        return self.call("POST", "reset", {})

    def fault(self, **kw):
        return self.call("POST", "faults", kw)

    def clear_faults(self):
        return self.call("DELETE", "faults")

    def mutate(self, op, path, **kw):
        return self.call("POST", "mutate", {"op": op, "path": path, **kw})


def _kv(args):
    out = {}
    for a in args:
        k, _, v = a.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[0] != "--state":
        print(__doc__, file=sys.stderr)
        return 2
    emu = Emu(argv[1])
    cmd, rest = argv[2], argv[3:]
    if cmd == "get":
        print(emu[rest[0]])
        return 0
    if cmd == "counters":
        result = emu.counters()
    elif cmd == "requests":
        result = emu.requests(rest[0] if rest else None)
    elif cmd == "token-requests":
        result = emu.token_requests()
    elif cmd == "reset":
        result = emu.reset()
    elif cmd == "fault":
        result = emu.fault(kind=rest[0], route=rest[1] if len(rest) > 1 and "=" not in rest[1] else "*",
                           **_kv([a for a in rest[1:] if "=" in a]))
    elif cmd == "mutate":
        result = emu.mutate(rest[0], rest[1], **_kv(rest[2:]))
    elif cmd == "call":
        result = emu.call(rest[0], rest[1], json.loads(rest[2]) if len(rest) > 2 else None)
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
