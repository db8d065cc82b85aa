#!/usr/bin/env python3
"""Tests of the emulator's building blocks: quickXorHash (PROTOCOL.md 10),
RSA/JWT cross-checked with the openssl CLI, the test PKI, the kubelet
stand-in and the dataset generator."""

import base64
import hashlib
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dataset  # noqa: E402
import emu_crypto as c  # noqa: E402
import kubelet  # noqa: E402
from qxh import QuickXorHash, file_quickxorhash, quickxorhash  # noqa: E402

# Every vector of PROTOCOL.md section 10.
QXH_VECTORS = [
    (b"", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    (b"\x4a", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
    (b"\xb5\xb4", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
    (b"a", "YQAAAAAAAAAAAAAAAQAAAAAAAAA="),
    (b"abc", "YRDDGAAAAAAAAAAAAwAAAAAAAAA="),
    (b"hello world", "aCgDG9jwBhDc4Q1yawMZAAAAAAA="),
    (b"The quick brown fox jumps over the lazy dog", "bMSlbysmxJL6S75XwfMcQZOpcr4="),
    (bytes(1 << 20), "AAAAAAAAAAAAAAAAAAAQAAAAAAA="),
    (bytes(i % 256 for i in range(4000)), "/+EGLlnQi0dVs5OErXqhEnz5wg4="),
]


def qxh_by_definition(data: bytes) -> str:
    """PROTOCOL.md 10 transcribed literally: slow, obviously right."""
    acc = 0
    for i, b in enumerate(data):
        s = (11 * i) % 160
        acc ^= ((b << s) | (b >> (160 - s))) & ((1 << 160) - 1)
    out = bytearray(acc.to_bytes(20, "little"))
    for j in range(8):
        out[12 + j] ^= (len(data) >> (8 * j)) & 0xFF
    return base64.b64encode(out).decode()


def hash_in_chunks(data: bytes, sizes) -> str:
    """Feeds data cycling through the chunk sizes, so chunks start at offsets
    that are not multiples of 160."""
    h = QuickXorHash()
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        h.update(data[pos:pos + n])
        pos, i = pos + n, i + 1
    return h.b64()


def openssl(*args, data=None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


class TmpDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="spfs-crypto-data-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)


class QuickXorHashTest(TmpDir):
    def test_vectors_whole_and_streamed(self):
        for data, want in QXH_VECTORS:
            self.assertEqual(quickxorhash(data), want, len(data))
            for size in (1, 3, 7, 159, 160, 161, 1000, 81919, 81921):
                if size == 1 and len(data) > 5000:
                    continue  # 1 MiB byte by byte adds seconds and nothing new
                self.assertEqual(hash_in_chunks(data, [size]), want, (len(data), size))

    def test_random_data_and_chunking_match_the_definition(self):
        rng = random.Random(5)
        data = rng.randbytes(200_003)
        want = qxh_by_definition(data)
        self.assertEqual(quickxorhash(data), want)
        self.assertEqual(quickxorhash(memoryview(data)), want)
        for _ in range(5):
            sizes = [rng.choice([0, 1, 3, 7, 150, 161, 1000, 81920, 100_001]) or 1 for _ in range(7)]
            self.assertEqual(hash_in_chunks(data, sizes), want, sizes)

    def test_digest_does_not_consume_state(self):
        h = QuickXorHash()
        h.update(b"hello ")
        h.digest()
        h.update(b"world")
        self.assertEqual(h.b64(), "aCgDG9jwBhDc4Q1yawMZAAAAAAA=")

    def test_file_hash_and_64_mib_speed(self):
        data = random.Random(6).randbytes(64 << 20)
        with open(self.path("f"), "wb") as f:
            f.write(data)
        t = time.monotonic()
        in_memory = hash_in_chunks(data, [1_000_003, 4 << 20, 17])
        self.assertEqual(file_quickxorhash(self.path("f")), in_memory)
        # Two passes over 64 MiB; the emulator hashes gigabytes, minutes would be a bug.
        self.assertLess(time.monotonic() - t, 30)


class Base64UrlTest(unittest.TestCase):
    def test_round_trip_and_padding(self):
        for n in range(40):
            data = bytes(range(250, 250 - n, -1))
            enc = c.b64url_encode(data)
            self.assertNotIn("=", enc)
            self.assertEqual(c.b64url_decode(enc), data)
            self.assertEqual(c.b64url_decode(enc + "=" * (-len(enc) % 4)), data)

    def test_rejects_garbage(self):
        for bad in ("abc+", "ab/c", "a b", "é", "a", "abcde", "YQ=", "YQ===", "Y=Q="):
            with self.assertRaises(ValueError, msg=bad):
                c.b64url_decode(bad)


class RsaTest(TmpDir):
    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="spfs-rsa-")
        cls.key_path = os.path.join(cls.keydir, "k.pem")
        cls.key = c.RsaKey.generate(cls.key_path)
        cls.pub_path = os.path.join(cls.keydir, "pub.pem")
        openssl("rsa", "-in", cls.key_path, "-pubout", "-out", cls.pub_path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keydir, ignore_errors=True)

    PSS = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256"]

    def test_generated_key_file(self):
        self.assertEqual(os.stat(self.key_path).st_mode & 0o777, 0o600)
        self.assertIsNotNone(self.key.d)
        self.assertEqual(self.key.n.bit_length(), 2048)

    def test_pem_forms_agree(self):
        pkcs1 = self.path("pkcs1.pem")
        openssl("rsa", "-in", self.key_path, "-traditional", "-out", pkcs1)
        with open(pkcs1, encoding="ascii") as f:
            self.assertIn("BEGIN RSA PRIVATE KEY", f.read())
        k1 = c.RsaKey.load_pem(pkcs1)
        pub = c.RsaKey.load_pem(self.pub_path)
        self.assertEqual((k1.n, k1.e, k1.d), (self.key.n, self.key.e, self.key.d))
        self.assertEqual((pub.n, pub.e, pub.d), (self.key.n, self.key.e, None))
        with self.assertRaises(ValueError):
            c.RsaKey.from_pem("-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n")
        with self.assertRaises(ValueError):
            c.RsaKey.from_pem("no key here")

    def test_kid_is_sha256_of_openssl_spki(self):
        der = openssl("rsa", "-in", self.key_path, "-pubout", "-outform", "DER")
        self.assertEqual(self.key.public_der(), der)
        self.assertEqual(self.key.kid(), c.b64url_encode(hashlib.sha256(der).digest()))
        jwk = self.key.public_jwk()
        self.assertEqual({k: jwk[k] for k in ("use", "kty", "alg", "e")},
                         {"use": "sig", "kty": "RSA", "alg": "RS256", "e": "AQAB"})
        self.assertEqual(jwk["kid"], self.key.kid())
        back = c.RsaKey.from_jwk(jwk)
        self.assertEqual((back.n, back.e, back.d), (self.key.n, self.key.e, None))

    def sign_with_openssl(self, msg: bytes, opts) -> bytes:
        with open(self.path("msg"), "wb") as f:
            f.write(msg)
        return openssl("dgst", "-sha256", "-sign", self.key_path, *opts, self.path("msg"))

    def verify_with_openssl(self, msg: bytes, sig: bytes, opts) -> bool:
        with open(self.path("msg"), "wb") as f:
            f.write(msg)
        with open(self.path("sig"), "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", self.pub_path, *opts,
                            "-signature", self.path("sig"), self.path("msg")], capture_output=True)
        return r.returncode == 0 and b"Verified OK" in r.stdout

    def test_sign_and_verify_agree_with_openssl(self):
        pub = self.key.public()
        msg = b"header.payload"
        for alg, opts in (("RS256", []), ("PS256", self.PSS)):
            ours = c.rsa_sign(self.key, msg, alg)
            self.assertTrue(self.verify_with_openssl(msg, ours, opts), alg)
            self.assertFalse(self.verify_with_openssl(msg + b"!", ours, opts), alg)
            theirs = self.sign_with_openssl(msg, opts)
            self.assertTrue(c.rsa_verify(pub, msg, theirs, alg), alg)
            self.assertTrue(c.rsa_verify(pub, msg, ours, alg), alg)
            tampered = bytearray(theirs)
            tampered[100] ^= 1
            self.assertFalse(c.rsa_verify(pub, msg, bytes(tampered), alg), alg)
            self.assertFalse(c.rsa_verify(pub, msg + b"!", theirs, alg), alg)
            self.assertFalse(c.rsa_verify(pub, msg, theirs[:-1], alg), alg)
        rs = c.rsa_sign(self.key, msg, "RS256")
        self.assertFalse(c.rsa_verify(pub, msg, rs, "PS256"))
        self.assertFalse(c.rsa_verify(pub, msg, c.rsa_sign(self.key, msg, "PS256"), "RS256"))
        with self.assertRaises(ValueError):
            c.rsa_sign(pub, msg, "RS256")
        with self.assertRaises(ValueError):
            c.rsa_sign(self.key, msg, "HS256")

    def test_pss_other_salt_lengths_verify(self):
        for saltlen in ("0", "20", "max"):
            opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", f"rsa_pss_saltlen:{saltlen}"]
            sig = self.sign_with_openssl(b"m", opts)
            self.assertTrue(c.rsa_verify(self.key, b"m", sig, "PS256"), saltlen)

    def test_jwt(self):
        other = c.RsaKey.generate(self.path("other.pem"))
        jwks = {self.key.kid(): self.key.public()}
        claims = {"sub": "x", "n": 1, "u": "日本"}
        for alg in ("RS256", "PS256"):
            token = c.jwt_encode({"alg": alg, "kid": self.key.kid()}, claims, self.key)
            header, payload = c.jwt_verify(token, jwks, algs=("RS256", "PS256"))
            self.assertEqual((header["alg"], payload), (alg, claims))
        token = c.jwt_encode({"alg": "RS256", "kid": self.key.kid()}, claims, self.key)
        h, p, s = token.split(".")
        self.assertNotIn(" ", c.b64url_decode(h).decode())  # compact JSON
        forged = ".".join([h, c.b64url_encode(b'{"sub":"admin"}'), s])
        cases = [
            (forged, jwks, "bad signature"),
            (token, {other.kid(): other.public()}, "unknown kid"),
            (token, other.public(), "bad signature"),
            (c.jwt_encode({"alg": "PS256", "kid": self.key.kid()}, claims, self.key), jwks, "unsupported alg"),
            (".".join([c.b64url_encode(b'{"alg":"none"}'), p, ""]), jwks, "unsupported alg"),
            (token + "x", jwks, "bad signature"),
        ]
        for tok, keys, why in cases:
            with self.assertRaisesRegex(c.JwtError, why):
                c.jwt_verify(tok, keys)

    def test_malformed_jwt(self):
        e30 = c.b64url_encode(b"{}")
        for bad in ("", "a.b", "a.b.c.d", f"!!.{e30}.x", f"{e30}.bm90IGpzb24.x",
                    f"{c.b64url_encode(b'[]')}.{e30}.x", f"{e30}.{e30}.a+b", f"{e30}.{e30}.a\n",
                    f"{c.b64url_encode(bytes([0xff]))}.{e30}.x", 42):
            with self.assertRaises(c.JwtError, msg=repr(bad)):
                c.jwt_decode_unverified(bad)
        h, p, si, sig = c.jwt_decode_unverified(f"{e30}.{e30}.AAEC")
        self.assertEqual((h, p, si, sig), ({}, {}, f"{e30}.{e30}".encode(), b"\x00\x01\x02"))


class PkiTest(TmpDir):
    def test_server_cert_is_trusted_by_openssl_python_and_curl(self):
        ca_crt, ca_key = c.make_ca(self.tmp)
        crt, key = c.make_server_cert(self.tmp, ca_crt, ca_key)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        out = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver",
                              "-CAfile", ca_crt, crt], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(c.cert_public_key(crt).n, c.RsaKey.load_pem(key).n)

        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(crt, key)
        srv = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(srv.close)
        port = srv.getsockname()[1]
        curl = shutil.which("curl")
        clients = 3 if curl else 2

        def serve():
            for _ in range(clients):
                conn, _ = srv.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True) as s:
                        s.recv(4096)
                        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
                except (ssl.SSLError, OSError):
                    pass  # the client's assertion reports the failure

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        ctx = ssl.create_default_context(cafile=ca_crt)
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        for host in ("localhost", "127.0.0.1"):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertTrue(s.recv(4096).endswith(b"hi"))
        if curl:
            r = subprocess.run([curl, "-sS", "--cacert", ca_crt, f"https://localhost:{port}/"],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout), (0, "hi"), r.stderr)
        t.join(10)

    def test_client_cert_and_thumbprints(self):
        crt, key = c.make_client_cert(self.tmp, "spfs developer/dev+1")
        subject = openssl("x509", "-in", crt, "-noout", "-subject").decode()
        self.assertIn("spfs developer/dev+1", subject)
        der = openssl("x509", "-in", crt, "-outform", "DER")
        self.assertEqual(c.cert_der(crt), der)
        for alg in ("sha1", "sha256"):
            fp = openssl("x509", "-in", crt, "-noout", "-fingerprint", f"-{alg}").decode()
            want = bytes.fromhex(fp.strip().split("=", 1)[1].replace(":", ""))
            self.assertEqual(c.cert_thumbprint(crt, alg), want)
        self.assertEqual(c.cert_public_key(crt).n, c.RsaKey.load_pem(key).n)
        with self.assertRaises(ValueError):
            c.cert_thumbprint(crt, "md5")


class KubeletTest(TmpDir):
    ISSUER = "https://eastus.oic.prod-aks.azure.com/tenant/cluster/"

    def setUp(self):
        super().setUp()
        self.key_path = self.path("issuer.key")
        self.key = c.RsaKey.generate(self.key_path)
        self.jwks = {self.key.kid(): self.key.public()}

    def run_kubelet(self, *args, **kw):
        return subprocess.run([sys.executable, os.path.join(HERE, "kubelet.py"), *args],
                              capture_output=True, text=True, timeout=60, **kw)

    def read_claims(self, path):
        with open(path, encoding="ascii") as f:
            return c.jwt_verify(f.read(), self.jwks)

    def test_claims(self):
        tok = kubelet.mint_sa_token(self.key, self.ISSUER, "ns", "sa", ttl=600, now=1000, pod="p-1")
        header, claims = c.jwt_verify(tok, self.jwks)
        self.assertEqual(header, {"alg": "RS256", "kid": self.key.kid()})
        self.assertEqual(claims["aud"], ["api://AzureADTokenExchange"])
        self.assertEqual(claims["iss"], self.ISSUER)
        self.assertEqual(claims["sub"], "system:serviceaccount:ns:sa")
        self.assertEqual((claims["iat"], claims["nbf"], claims["exp"]), (1000, 1000, 1600))
        k8s = claims["kubernetes.io"]
        self.assertEqual((k8s["namespace"], k8s["pod"]["name"], k8s["serviceaccount"]["name"]),
                         ("ns", "p-1", "sa"))
        self.assertTrue(k8s["node"]["name"] and k8s["pod"]["uid"])
        again = c.jwt_verify(kubelet.mint_sa_token(self.key, self.ISSUER, "ns", "sa"), self.jwks)[1]
        self.assertNotEqual(again["jti"], claims["jti"])
        self.assertLessEqual(abs(again["iat"] - time.time()), 5)

    def test_cli_once_with_state_and_offset(self):
        state = self.path("state.json")
        with open(state, "w", encoding="utf-8") as f:
            f.write(f'{{"oidc_issuer": "{self.ISSUER}", "issuer_key": "{self.key_path}", '
                    '"sa_namespace": "data", "sa_name": "reader"}')
        out = self.path("token")
        r = self.run_kubelet("--state", state, "--out", out, "--now-offset", "-7200", "--ttl", "3600")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, claims = self.read_claims(out)
        self.assertEqual((claims["iss"], claims["sub"]), (self.ISSUER, "system:serviceaccount:data:reader"))
        self.assertLess(claims["exp"], time.time())  # expired, as asked
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o644)
        r = self.run_kubelet("--key", self.key_path, "--issuer", "https://i/", "--namespace", "n",
                             "--service-account", "s", "--out", out, "--rotate", "0.01", "--count", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read_claims(out)[1]["sub"], "system:serviceaccount:n:s")
        self.assertEqual(os.listdir(self.tmp).count("token"), 1)
        self.assertEqual(len(os.listdir(self.tmp)), 3, "temporary files left behind")
        for bad in (["--out", out], ["--state", self.path("nope.json"), "--out", out],
                    ["--key", self.key_path, "--issuer", "x", "--out", out, "--count", "2"]):
            self.assertEqual(self.run_kubelet(*bad).returncode, 2, bad)

    def test_rotation_is_atomic_and_stops_on_sigterm(self):
        out = self.path("token")
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "kubelet.py"), "--key", self.key_path,
                                 "--issuer", self.ISSUER, "--out", out, "--rotate", "0.01"])
        try:
            seen, reads = set(), 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    # A partial file would fail to parse or to verify.
                    seen.add(self.read_claims(out)[1]["jti"])
                    reads += 1
                except FileNotFoundError:
                    continue  # before the first write
            self.assertGreater(len(seen), 10)
            self.assertGreater(reads, len(seen))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)
        self.assertEqual(os.listdir(self.tmp).count("token"), 1)
        self.assertEqual(len(os.listdir(self.tmp)), 2, "temporary files left behind")


class DatasetTest(TmpDir):
    def snapshot(self, root):
        """{relpath: (sha256 or None for folders, mtime)} of a tree, root included."""
        out = {".": (None, os.stat(root).st_mtime)}
        for dirpath, dirs, files in os.walk(root):
            for name in dirs + files:
                p = os.path.join(dirpath, name)
                digest = None
                if name in files:
                    with open(p, "rb") as f:
                        digest = hashlib.file_digest(f, "sha256").hexdigest()
                out[os.path.relpath(p, root)] = (digest, os.stat(p).st_mtime)
        return out

    def test_test_profile_complete_and_deterministic(self):
        a, b, x = self.path("a"), self.path("b"), self.path("x")
        t = time.monotonic()
        dataset.generate(a, "test", seed=7, large_size=3 << 20 | 5)
        elapsed = time.monotonic() - t
        dataset.generate(b, "test", seed=7, large_size=3 << 20 | 5)
        dataset.generate(x, "test", seed=8, large_size=3 << 20 | 5, many=10)
        snap = self.snapshot(a)
        self.assertEqual(snap, self.snapshot(b))
        other = self.snapshot(x)
        self.assertNotEqual(snap["reports/big-export.csv"], other["reports/big-export.csv"])
        self.assertNotEqual(snap["large/big.bin"][0], other["large/big.bin"][0])
        self.assertLess(elapsed, 30)

        self.assertEqual(sorted(os.listdir(self.path("a", "many")))[::4999],
                         ["file-00001.csv", "file-05000.csv"])
        self.assertEqual(len(os.listdir(self.path("a", "many"))), 5000)
        self.assertEqual(len(os.listdir(self.path("x", "many"))), 10)
        self.assertEqual(os.path.getsize(self.path("a", "empty.csv")), 0)
        self.assertEqual(os.path.getsize(self.path("a", "large", "big.bin")), 3 << 20 | 5)
        self.assertEqual(os.listdir(self.path("a", "empty folder")), [])
        self.assertTrue(os.path.isfile(self.path("a", "deep", *[f"d{i}" for i in range(1, 11)], "leaf.csv")))
        self.assertTrue(os.path.isfile(self.path("a", "reports", "rewritten.xlsx")))
        sizes = [os.path.getsize(self.path("a", p)) for p, (d, _) in snap.items()
                 if d and p.endswith(".csv")]
        self.assertLess(min(s for s in sizes if s), 100)
        self.assertGreater(max(sizes), 1_500_000)
        names = os.listdir(self.path("a", "names"))
        for needle in (" ", "é", "日本語", "#", "%", "&", "+", "'", "[", "]", "(", ")"):
            self.assertTrue(any(needle in n for n in names), needle)

        mtimes = [m for _, m in snap.values()]
        self.assertEqual(len(set(mtimes)), len(mtimes), "mtimes must be distinct")
        first, end = dataset.MTIME_FIRST, dataset.MTIME_END
        self.assertTrue(all(m == int(m) and first <= m < end for m in mtimes))
        for rel in snap:
            if rel != ".":
                dataset.check_path(rel.replace(os.sep, "/"))
        xlsx = [p for p in snap if p.endswith(".xlsx")]
        self.assertGreaterEqual(len(xlsx), 3)
        for p in xlsx:
            self.assert_valid_xlsx(self.path("a", p))

    def assert_valid_xlsx(self, path):
        with zipfile.ZipFile(path) as z:
            self.assertIsNone(z.testzip())
            for part in ("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                         "xl/_rels/workbook.xml.rels", "xl/worksheets/sheet1.xml"):
                self.assertIn(part, z.namelist(), path)
            self.assertIn(b"<sheetData><row", z.read("xl/worksheets/sheet1.xml"))

    def test_demo_and_bench_profiles(self):
        demo = self.path("demo")
        dataset.generate(demo, "demo")
        for rel in ("README.txt", "reports/q3.csv", "reports/q4.csv", "reports/2026/summary.xlsx",
                    "finance/budget 2026.xlsx", "hr/headcount by region.csv"):
            self.assertTrue(os.path.isfile(os.path.join(demo, rel)), rel)
        self.assert_valid_xlsx(os.path.join(demo, "finance", "budget 2026.xlsx"))

        bench = self.path("bench")
        dataset.generate(bench, "bench", large_size=1000, many=3, parallel_files=3)
        self.assertEqual(sorted(os.listdir(os.path.join(bench, "large"))),
                         ["big-2.bin", "big-3.bin", "big.bin"])
        digests = set()
        for n in ("big.bin", "big-2.bin", "big-3.bin"):
            with open(os.path.join(bench, "large", n), "rb") as f:
                digests.add(hashlib.file_digest(f, "sha256").digest())
        self.assertEqual(len(digests), 3)
        small = os.listdir(os.path.join(bench, "small64k"))
        self.assertEqual(len(small), 1000)
        self.assertEqual({os.path.getsize(os.path.join(bench, "small64k", n)) for n in small}, {65536})
        with self.assertRaises(ValueError):
            dataset.generate(self.path("t"), "test", parallel_files=2)

    def test_refuses_non_empty_dir_and_bad_names(self):
        d = self.path("d")
        os.makedirs(d)
        with open(os.path.join(d, "keep"), "w", encoding="ascii") as f:
            f.write("x")
        with self.assertRaises(FileExistsError):
            dataset.generate(d, "demo")
        r = subprocess.run([sys.executable, os.path.join(HERE, "dataset.py"), "--out", d, "--profile", "demo"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not empty", r.stderr)
        r = subprocess.run([sys.executable, os.path.join(HERE, "dataset.py"), "--out", d,
                            "--profile", "demo", "--force"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(d, "reports", "q3.csv")))
        for bad in ("a:b.csv", "q?.csv", "x/ lead.csv", "trail.", "~$lock.xlsx", "CON", "con.txt",
                    "a/_vti_b/c", "forms/x.csv", "tab\there", "x" * 400):
            with self.assertRaises(ValueError, msg=bad):
                dataset.check_path(bad)
        dataset.check_path("sub/forms/x.csv")


if __name__ == "__main__":
    unittest.main(verbosity=2)
