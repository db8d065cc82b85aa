#!/usr/bin/env python3
"""Kubelet stand-in: mints projected service-account tokens into a file.

Tokens look like what Kubernetes projects for azure workload identity
(PROTOCOL.md 1.6): RS256, kid = base64url(SHA-256(SPKI)), aud array with
api://AzureADTokenExchange, iss/sub/iat/nbf/exp/jti and the kubernetes.io
block. With --rotate the file is replaced atomically on an interval, as
kubelet's atomic writer does, so a reader never sees a partial token.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emu_crypto import RsaKey, jwt_encode  # noqa: E402

AUDIENCE = "api://AzureADTokenExchange"


def mint_sa_token(key, issuer, namespace, service_account, ttl=3600,
                  audience=AUDIENCE, now=None, pod="spfs-0"):
    now = int(time.time()) if now is None else int(now)
    payload = {
        "aud": [audience],
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": pod, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, pod))},
            "serviceaccount": {"name": service_account,
                               "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, service_account))},
            "node": {"name": "node-0", "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "node-0"))},
        },
    }
    return jwt_encode({"alg": "RS256", "kid": key.kid()}, payload, key)


def write_token_file(path, token):
    """Replaces path atomically (temp file in the same directory + rename)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".token.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", help="emulator state.json (gives --key and --issuer)")
    ap.add_argument("--key", help="issuer private key (PEM)")
    ap.add_argument("--issuer", help="issuer URL, exactly as configured (trailing slash)")
    ap.add_argument("--namespace", default=None)
    ap.add_argument("--service-account", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ttl", type=int, default=3600)
    ap.add_argument("--audience", default=AUDIENCE)
    ap.add_argument("--now-offset", type=int, default=0,
                    help="shift iat/nbf/exp by this many seconds (expired or future tokens)")
    ap.add_argument("--rotate", type=float, default=0, help="re-mint every SECONDS")
    ap.add_argument("--count", type=int, default=0, help="with --rotate: stop after N tokens")
    args = ap.parse_args(argv)

    ns, sa = args.namespace, args.service_account
    if args.state:
        with open(args.state, encoding="utf-8") as f:
            st = json.load(f)
        args.key = args.key or st["issuer_key"]
        args.issuer = args.issuer or st["oidc_issuer"]
        ns = ns or st.get("sa_namespace")
        sa = sa or st.get("sa_name")
    if not args.key or not args.issuer:
        ap.error("--key and --issuer (or --state) are required")
    ns, sa = ns or "default", sa or "spfs"
    key = RsaKey.load_pem(args.key)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    minted = 0
    while not stop:
        token = mint_sa_token(key, args.issuer, ns, sa, ttl=args.ttl,
                              audience=args.audience,
                              now=time.time() + args.now_offset)
        write_token_file(args.out, token)
        minted += 1
        if not args.rotate or (args.count and minted >= args.count):
            break
        deadline = time.time() + args.rotate
        while not stop and time.time() < deadline:
            time.sleep(min(0.1, args.rotate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
