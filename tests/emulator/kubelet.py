#!/usr/bin/env python3
"""Kubelet stand-in: mints projected service-account tokens into a file.

Tokens look like what Kubernetes projects for Azure workload identity
(PROTOCOL.md 1.6): RS256, kid = base64url(SHA-256(SPKI DER)), aud array with
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
NODE = "aks-nodepool1-0"


def _uid(kind: str, name: str) -> str:
    """A stable uid per object, so tokens for the same pod look alike."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spfs-emulator/{kind}/{name}"))


def mint_sa_token(key: RsaKey, issuer: str, namespace: str, service_account: str,
                  ttl: int = 3600, audience: str = AUDIENCE, now: int | None = None,
                  pod: str = "spfs-0") -> str:
    """A projected service-account token for system:serviceaccount:NS:SA."""
    if not namespace or not service_account:
        raise ValueError("namespace and service account must not be empty")
    iat = int(time.time() if now is None else now)
    payload = {
        "aud": [audience],
        "exp": iat + ttl,
        "iat": iat,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": NODE, "uid": _uid("node", NODE)},
            "pod": {"name": pod, "uid": _uid("pod", f"{namespace}/{pod}")},
            "serviceaccount": {"name": service_account,
                               "uid": _uid("serviceaccount", f"{namespace}/{service_account}")},
        },
        "nbf": iat,
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
    }
    return jwt_encode({"alg": "RS256", "kid": key.kid()}, payload, key)


def write_token_file(path: str, token: str) -> None:
    """Replaces path atomically (temp file in the same directory, fsync,
    rename), mode 0644 as on Kubernetes >= 1.19."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".token-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token)
            f.flush()
            os.fchmod(fd, 0o644)
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _options(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", help="emulator state.json: gives the issuer, its key and the subject")
    ap.add_argument("--key", help="issuer private key (PEM)")
    ap.add_argument("--issuer", help="issuer URL, byte for byte as in the federated credential")
    ap.add_argument("--namespace", help="default: the state file's, else 'default'")
    ap.add_argument("--service-account", help="default: the state file's, else 'spfs'")
    ap.add_argument("--out", required=True, help="token file to write")
    ap.add_argument("--ttl", type=int, default=3600, help="exp - iat in seconds (default 3600)")
    ap.add_argument("--audience", default=AUDIENCE)
    ap.add_argument("--pod", default="spfs-0")
    ap.add_argument("--now-offset", type=int, default=0,
                    help="shift iat/nbf/exp by SECONDS (negative: expired tokens)")
    ap.add_argument("--rotate", type=float, help="mint a fresh token every SECONDS until SIGTERM/SIGINT")
    ap.add_argument("--count", type=int, help="with --rotate: stop after N tokens")
    args = ap.parse_args(argv)

    if args.state:
        try:
            with open(args.state, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            ap.error(f"cannot read --state: {e}")
        args.key = args.key or state.get("issuer_key")
        args.issuer = args.issuer or state.get("issuer") or state.get("oidc_issuer")
        args.namespace = args.namespace or state.get("sa_namespace")
        args.service_account = args.service_account or state.get("sa_name")
    if not args.key or not args.issuer:
        ap.error("--key and --issuer (or --state) are required")
    args.namespace = args.namespace or "default"
    args.service_account = args.service_account or "spfs"
    if args.ttl <= 0:
        ap.error("--ttl must be positive")
    if args.rotate is not None and args.rotate <= 0:
        ap.error("--rotate must be positive")
    if args.count is not None and (args.rotate is None or args.count < 1):
        ap.error("--count needs --rotate and a positive N")
    try:
        args.signing_key = RsaKey.load_pem(args.key)
    except (OSError, ValueError) as e:
        ap.error(f"cannot load --key {args.key}: {e}")
    return args


def main(argv=None) -> int:
    args = _options(argv)
    # Blocked signals stay pending until sigtimedwait() takes them, so a
    # SIGTERM never interrupts a write and the wait needs no polling.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    minted = 0
    while True:
        token = mint_sa_token(args.signing_key, args.issuer, args.namespace, args.service_account,
                              ttl=args.ttl, audience=args.audience, pod=args.pod,
                              now=int(time.time()) + args.now_offset)
        try:
            write_token_file(args.out, token)
        except OSError as e:
            print(f"kubelet.py: cannot write {args.out}: {e}", file=sys.stderr)
            return 1
        minted += 1
        if args.rotate is None or minted == args.count:
            return 0
        if signal.sigtimedwait(stop_signals, args.rotate) is not None:
            return 0


if __name__ == "__main__":
    sys.exit(main())
