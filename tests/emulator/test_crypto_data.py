#!/usr/bin/env python3
"""Tests of the emulator's building blocks: RSA/JWT against the openssl CLI,
quickXorHash vectors (PROTOCOL.md 10), the kubelet stand-in and the dataset
generator."""

import os
import shutil
import ssl
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dataset  # noqa: E402
import emu_crypto as c  # noqa: E402
from kubelet import mint_sa_token, write_token_file  # noqa: E402
from qxh import QuickXorHash, file_quickxorhash, quickxorhash  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

VECTORS = [
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


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="spfs-cryptotest-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class QuickXor(unittest.TestCase):
    def test_vectors_in_any_chunking(self):
        for data, want in VECTORS:
            self.assertEqual(quickxorhash(data), want)
            for size in (1, 3, 7, 159, 160, 161, 1000):
                if size == 1 and len(data) > 5000:
                    continue
                h = QuickXorHash()
                for i in range(0, len(data), size):
                    h.update(data[i:i + size])
                self.assertEqual(h.b64(), want, (len(data), size))

    def test_large_input_is_fast_enough(self):
        data = os.urandom(64 << 20)
        t = time.time()
        whole = quickxorhash(data)
        h = QuickXorHash()
        for i in range(0, len(data), 1_000_003):
            h.update(data[i:i + 1_000_003])
        self.assertEqual(h.b64(), whole)
        self.assertLess(time.time() - t, 60)


class Crypto(Tmp):
    def openssl(self, *args, data=None):
        return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout

    def test_sign_verify_both_ways_with_openssl(self):
        key_path = os.path.join(self.tmp, "k.pem")
        key = c.RsaKey.generate(key_path)
        msg = b"signing input"
        msg_path = os.path.join(self.tmp, "m")
        with open(msg_path, "wb") as f:
            f.write(msg)
        pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
        for alg, opts in (("RS256", []), ("PS256", pss)):
            ours = c.rsa_sign(key, msg, alg)
            sig_path = os.path.join(self.tmp, f"{alg}.sig")
            with open(sig_path, "wb") as f:
                f.write(ours)
            pub_path = os.path.join(self.tmp, "pub.pem")
            self.openssl("rsa", "-in", key_path, "-pubout", "-out", pub_path)
            out = self.openssl("dgst", "-sha256", "-verify", pub_path, *opts,
                               "-signature", sig_path, msg_path)
            self.assertIn(b"Verified OK", out)
            theirs = self.openssl("dgst", "-sha256", "-sign", key_path, *opts, msg_path)
            self.assertTrue(c.rsa_verify(key.public(), msg, theirs, alg))
            self.assertFalse(c.rsa_verify(key.public(), msg + b"x", theirs, alg))
            self.assertFalse(c.rsa_verify(key.public(), msg, theirs[:-1] + b"\x00", alg))
        # PSS with another salt length verifies too (RFC 8017 recovery).
        other = self.openssl("dgst", "-sha256", "-sign", key_path, "-sigopt", "rsa_padding_mode:pss",
                             "-sigopt", "rsa_pss_saltlen:20", msg_path)
        self.assertTrue(c.rsa_verify(key, msg, other, "PS256"))

    def test_kid_matches_openssl_spki(self):
        key_path = os.path.join(self.tmp, "k.pem")
        key = c.RsaKey.generate(key_path)
        der = self.openssl("rsa", "-in", key_path, "-pubout", "-outform", "DER")
        self.assertEqual(key.public_der(), der)
        import hashlib
        self.assertEqual(key.kid(), c.b64url_encode(hashlib.sha256(der).digest()))
        self.assertEqual(c.RsaKey.from_jwk(key.public_jwk()).n, key.n)

    def test_jwt(self):
        key = c.RsaKey.generate(os.path.join(self.tmp, "k.pem"))
        other = c.RsaKey.generate(os.path.join(self.tmp, "o.pem"))
        token = c.jwt_encode({"alg": "RS256", "kid": key.kid()}, {"sub": "x"}, key)
        self.assertEqual(c.jwt_verify(token, {key.kid(): key.public()})[1], {"sub": "x"})
        with self.assertRaises(c.JwtError):
            c.jwt_verify(token, {other.kid(): other.public()})  # unknown kid
        with self.assertRaises(c.JwtError):
            c.jwt_verify(token, other.public())  # bad signature
        for bad in ("", "a.b", "a.b.c.d", "!!.e30.x", "e30.bm90IGpzb24.x", "W10.e30.x"):
            with self.assertRaises(c.JwtError):
                c.jwt_decode_unverified(bad)
        with self.assertRaises(ValueError):
            c.b64url_decode("abc+")

    def test_server_cert_verifies(self):
        ca_crt, ca_key = c.make_ca(self.tmp)
        crt, key = c.make_server_cert(self.tmp, ca_crt, ca_key)
        out = subprocess.run(["openssl", "verify", "-CAfile", ca_crt, crt], capture_output=True, text=True)
        self.assertIn("OK", out.stdout)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(crt, key)
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)

        def serve():
            conn, _ = srv.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as s:
                s.sendall(b"hi")

        t = threading.Thread(target=serve)
        t.start()
        ctx = ssl.create_default_context(cafile=ca_crt)
        with socket.create_connection(srv.getsockname()) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.recv(2), b"hi")
        t.join()
        srv.close()


class Kubelet(Tmp):
    def test_claims(self):
        key = c.RsaKey.generate(os.path.join(self.tmp, "k.pem"))
        tok = mint_sa_token(key, "https://issuer.example/abc/", "ns", "sa", ttl=600, now=1000)
        header, claims = c.jwt_verify(tok, {key.kid(): key.public()})
        self.assertEqual(header["kid"], key.kid())
        self.assertEqual(claims["aud"], ["api://AzureADTokenExchange"])
        self.assertEqual(claims["sub"], "system:serviceaccount:ns:sa")
        self.assertEqual((claims["iat"], claims["nbf"], claims["exp"]), (1000, 1000, 1600))
        self.assertEqual(claims["kubernetes.io"]["namespace"], "ns")
        self.assertTrue(claims["jti"])

    def test_rotation_is_atomic(self):
        key_path = os.path.join(self.tmp, "k.pem")
        key = c.RsaKey.generate(key_path)
        out = os.path.join(self.tmp, "token")
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "kubelet.py"), "--key", key_path,
                                 "--issuer", "https://i/", "--out", out, "--rotate", "0.05"])
        try:
            seen = set()
            deadline = time.time() + 3
            while time.time() < deadline:
                try:
                    with open(out, encoding="ascii") as f:
                        tok = f.read()
                except FileNotFoundError:
                    continue
                # Never a partial file: every read is a whole, valid token.
                _, claims = c.jwt_verify(tok, {key.kid(): key.public()})
                seen.add(claims["jti"])
            self.assertGreater(len(seen), 5)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)
        write_token_file(out, "x")
        self.assertEqual(oct(os.stat(out).st_mode & 0o777), "0o644")


class Dataset(Tmp):
    def tree(self, root):
        out = {}
        for dirpath, dirs, files in os.walk(root):
            for n in dirs + files:
                p = os.path.join(dirpath, n)
                st = os.stat(p)
                data = open(p, "rb").read() if os.path.isfile(p) else None
                out[os.path.relpath(p, root)] = (data, int(st.st_mtime))
        return out

    def test_deterministic_and_complete(self):
        a, b, x = (os.path.join(self.tmp, n) for n in "abx")
        dataset.generate(a, "test", seed=7, large_size=1 << 20, many=5000)
        dataset.generate(b, "test", seed=7, large_size=1 << 20, many=5000)
        dataset.generate(x, "test", seed=8, large_size=1 << 20, many=50)
        ta = self.tree(a)
        self.assertEqual(ta, self.tree(b))
        self.assertNotEqual(ta, self.tree(x))
        self.assertEqual(len(os.listdir(os.path.join(a, "many"))), 5000)
        self.assertEqual(os.path.getsize(os.path.join(a, "empty.csv")), 0)
        self.assertEqual(os.path.getsize(os.path.join(a, "large/big.bin")), 1 << 20)
        deep = os.path.join(a, "deep", *[f"d{i}" for i in range(1, 11)], "leaf.csv")
        self.assertTrue(os.path.isfile(deep))
        names = os.listdir(os.path.join(a, "names"))
        for needle in ("é", "日本語", "#", "%", "&", "+", "'", "[", "("):
            self.assertTrue(any(needle in n for n in names), needle)
        for n in names:
            dataset.check_name(n)
        # mtimes are distinct whole seconds (stat-visible, comparable).
        mtimes = [m for _, m in ta.values()]
        self.assertGreater(len(set(mtimes)), 0.9 * len(mtimes))
        with self.assertRaises(FileExistsError):
            dataset.generate(a, "test")

    def test_xlsx_valid(self):
        d = os.path.join(self.tmp, "demo")
        dataset.generate(d, "demo")
        for dirpath, _, files in os.walk(d):
            for n in files:
                if n.endswith(".xlsx"):
                    with zipfile.ZipFile(os.path.join(dirpath, n)) as z:
                        self.assertIsNone(z.testzip())
                        names = set(z.namelist())
                        for part in ("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                                     "xl/_rels/workbook.xml.rels", "xl/worksheets/sheet1.xml"):
                            self.assertIn(part, names)
        self.assertTrue(os.path.isfile(os.path.join(d, "reports/q3.csv")))

    def test_file_hash_matches_memory_hash(self):
        p = os.path.join(self.tmp, "f")
        data = os.urandom(3 << 20 | 17)
        with open(p, "wb") as f:
            f.write(data)
        self.assertEqual(file_quickxorhash(p), quickxorhash(data))


if __name__ == "__main__":
    unittest.main(verbosity=2)
