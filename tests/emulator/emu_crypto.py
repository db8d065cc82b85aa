"""Crypto for the emulator, Python standard library only.

RSA is done with pow() on integers parsed from DER: enough to sign the
tokens we mint (RS256) and to verify what clients send (RS256, PS256),
exactly as Entra ID does. Keys and certificates are made with the openssl
CLI, which is what a real cluster operator would use too.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile


class JwtError(Exception):
    """A JWT that is malformed or fails verification."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    if isinstance(s, bytes):
        s = s.decode("ascii")
    s = s.rstrip("=")
    if len(s) % 4 == 1:
        raise ValueError("impossible base64url length")
    for c in s:
        if not (c.isascii() and (c.isalnum() or c in "-_")):
            raise ValueError("character outside base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---- DER ------------------------------------------------------------------

def _der_read(data: bytes, pos: int):
    """Returns (tag, content_start, content_end) of the element at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _der_children(data: bytes, start: int, end: int):
    out = []
    pos = start
    while pos < end:
        tag, cs, ce = _der_read(data, pos)
        out.append((tag, cs, ce))
        pos = ce
    return out


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(content)) + content


def _der_int(n: int) -> bytes:
    b = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")
    return _der(0x02, b)


# OID rsaEncryption followed by the NULL parameters.
_RSA_OID = bytes.fromhex("06092a864886f70d0101010500")


def _pem_blocks(text: str):
    """Yields (label, der) for each PEM block."""
    label = None
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN "):
            label = line[11:].rstrip("-")
            lines = []
        elif line.startswith("-----END ") and label:
            yield label, base64.b64decode("".join(lines))
            label = None
        elif label:
            lines.append(line)


class RsaKey:
    """An RSA key: n, e, and d when private."""

    def __init__(self, n: int, e: int, d=None):
        self.n, self.e, self.d = n, e, d

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def generate(cls, pem_path: str, bits: int = 2048) -> "RsaKey":
        subprocess.run(["openssl", "genrsa", "-out", pem_path, str(bits)],
                       check=True, capture_output=True)
        os.chmod(pem_path, 0o600)
        return cls.load_pem(pem_path)

    @classmethod
    def load_pem(cls, path: str) -> "RsaKey":
        with open(path, encoding="ascii") as f:
            text = f.read()
        for label, der in _pem_blocks(text):
            if label == "RSA PRIVATE KEY":
                return cls._from_pkcs1_private(der)
            if label == "PRIVATE KEY":
                # PKCS#8: SEQUENCE { version, algorithm, OCTET STRING { PKCS#1 } }
                _, s, e = _der_read(der, 0)
                kids = _der_children(der, s, e)
                _, os_s, os_e = kids[2]
                return cls._from_pkcs1_private(der[os_s:os_e])
            if label == "PUBLIC KEY":
                return cls.from_spki_der(der)
        raise ValueError(f"no RSA key in {path}")

    @classmethod
    def _from_pkcs1_private(cls, der: bytes) -> "RsaKey":
        _, s, e = _der_read(der, 0)
        ints = [int.from_bytes(der[cs:ce], "big")
                for _, cs, ce in _der_children(der, s, e)]
        return cls(ints[1], ints[2], ints[3])

    @classmethod
    def from_spki_der(cls, der: bytes) -> "RsaKey":
        _, s, e = _der_read(der, 0)
        alg, bits = _der_children(der, s, e)[:2]
        _, bs, be = bits
        inner = der[bs + 1:be]  # skip the unused-bits byte
        _, s2, e2 = _der_read(inner, 0)
        n_el, e_el = _der_children(inner, s2, e2)[:2]
        return cls(int.from_bytes(inner[n_el[1]:n_el[2]], "big"),
                   int.from_bytes(inner[e_el[1]:e_el[2]], "big"))

    @classmethod
    def from_jwk(cls, jwk: dict) -> "RsaKey":
        if jwk.get("kty") != "RSA":
            raise ValueError("not an RSA JWK")
        return cls(int.from_bytes(b64url_decode(jwk["n"]), "big"),
                   int.from_bytes(b64url_decode(jwk["e"]), "big"))

    def public(self) -> "RsaKey":
        return RsaKey(self.n, self.e)

    def public_der(self) -> bytes:
        """SubjectPublicKeyInfo DER."""
        pkcs1 = _der(0x30, _der_int(self.n) + _der_int(self.e))
        return _der(0x30, _der(0x30, _RSA_OID)
                    + _der(0x03, b"\x00" + pkcs1))

    def kid(self) -> str:
        """azwi's kid: base64url(SHA-256(SPKI DER))."""
        return b64url_encode(hashlib.sha256(self.public_der()).digest())

    def public_jwk(self) -> dict:
        return {"use": "sig", "kty": "RSA", "kid": self.kid(), "alg": "RS256",
                "n": b64url_encode(self.n.to_bytes(self.size, "big")),
                "e": b64url_encode(self.e.to_bytes((self.e.bit_length() + 7) // 8, "big"))}


# ---- signatures -----------------------------------------------------------

_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _mgf1(seed: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def _pkcs1v15_encode(msg: bytes, k: int) -> bytes:
    t = _SHA256_PREFIX + hashlib.sha256(msg).digest()
    return b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def rsa_sign(key: RsaKey, msg: bytes, alg: str) -> bytes:
    if key.d is None:
        raise ValueError("public key cannot sign")
    k = key.size
    if alg == "RS256":
        em = _pkcs1v15_encode(msg, k)
    elif alg == "PS256":
        em_bits = key.n.bit_length() - 1
        em_len = (em_bits + 7) // 8
        salt = os.urandom(32)
        m_hash = hashlib.sha256(msg).digest()
        h = hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest()
        db = b"\x00" * (em_len - 32 - 32 - 2) + b"\x01" + salt
        masked = bytes(a ^ b for a, b in zip(db, _mgf1(h, em_len - 33)))
        masked = bytes([masked[0] & (0xFF >> (8 * em_len - em_bits))]) + masked[1:]
        em = masked + h + b"\xbc"
    else:
        raise ValueError(f"unsupported alg {alg}")
    s = pow(int.from_bytes(em, "big"), key.d, key.n)
    return s.to_bytes(k, "big")


def rsa_verify(pub: RsaKey, msg: bytes, sig: bytes, alg: str) -> bool:
    k = pub.size
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= pub.n:
        return False
    m = pow(s, pub.e, pub.n)
    if alg == "RS256":
        return hmac.compare_digest(m.to_bytes(k, "big"), _pkcs1v15_encode(msg, k))
    if alg == "PS256":
        em_bits = pub.n.bit_length() - 1
        em_len = (em_bits + 7) // 8
        if m.bit_length() > em_bits:
            return False
        em = m.to_bytes(em_len, "big")
        if em[-1] != 0xBC:
            return False
        masked, h = em[:em_len - 33], em[em_len - 33:-1]
        top_bits = 8 * em_len - em_bits
        if top_bits and masked[0] >> (8 - top_bits):
            return False
        db = bytes(a ^ b for a, b in zip(masked, _mgf1(h, em_len - 33)))
        db = bytes([db[0] & (0xFF >> (8 * em_len - em_bits))]) + db[1:]
        # Any salt length: find the 0x01 separator after the zero padding.
        i = 0
        while i < len(db) and db[i] == 0:
            i += 1
        if i >= len(db) or db[i] != 1:
            return False
        salt = db[i + 1:]
        m_hash = hashlib.sha256(msg).digest()
        return hmac.compare_digest(hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest(), h)
    return False


# ---- JWT ------------------------------------------------------------------

def _compact_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def jwt_encode(header: dict, payload: dict, key: RsaKey) -> str:
    signing_input = (b64url_encode(_compact_json(header)) + "."
                     + b64url_encode(_compact_json(payload)))
    sig = rsa_sign(key, signing_input.encode("ascii"), header["alg"])
    return signing_input + "." + b64url_encode(sig)


def jwt_decode_unverified(token: str):
    """Returns (header, payload, signing_input, signature)."""
    if not isinstance(token, str):
        raise JwtError("not a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwtError("a JWT has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise JwtError(f"malformed JWT: {e}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JwtError("JWT header and payload must be JSON objects")
    return header, payload, (parts[0] + "." + parts[1]).encode("ascii"), sig


def jwt_verify(token: str, keys, algs=("RS256",)):
    """Verifies the signature with keys (a dict kid -> RsaKey, or one key).
    Returns (header, payload); raises JwtError."""
    header, payload, signing_input, sig = jwt_decode_unverified(token)
    alg = header.get("alg")
    if alg not in algs:
        raise JwtError(f"unsupported alg {alg!r}")
    if isinstance(keys, RsaKey):
        key = keys
    else:
        key = keys.get(header.get("kid"))
        if key is None:
            raise JwtError("unknown kid")
    if not rsa_verify(key, signing_input, sig, alg):
        raise JwtError("bad signature")
    return header, payload


# ---- PKI via the openssl CLI ---------------------------------------------

def _openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def make_ca(dirpath: str, cn: str = "spfs test CA"):
    crt = os.path.join(dirpath, "ca.crt")
    key = os.path.join(dirpath, "ca.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", crt, "-days", "3650", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key, 0o600)
    return crt, key


def make_server_cert(dirpath, ca_crt, ca_key, dns_names=("localhost",),
                     ips=("127.0.0.1",), name="server"):
    crt = os.path.join(dirpath, f"{name}.crt")
    key = os.path.join(dirpath, f"{name}.key")
    csr = os.path.join(dirpath, f"{name}.csr")
    ext = os.path.join(dirpath, f"{name}.ext")
    san = ",".join([f"DNS:{d}" for d in dns_names] + [f"IP:{i}" for i in ips])
    with open(ext, "w", encoding="ascii") as f:
        f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "basicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={dns_names[0] if dns_names else ips[0]}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
             "-CAcreateserial", "-out", crt, "-days", "3650", "-extfile", ext)
    os.chmod(key, 0o600)
    for p in (csr, ext):
        os.unlink(p)
    return crt, key


def make_client_cert(dirpath, cn, name="client"):
    crt = os.path.join(dirpath, f"{name}.crt")
    key = os.path.join(dirpath, f"{name}.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", crt, "-days", "3650", "-subj", f"/CN={cn}")
    os.chmod(key, 0o600)
    return crt, key


def cert_der(crt_path: str) -> bytes:
    with open(crt_path, encoding="ascii") as f:
        for label, der in _pem_blocks(f.read()):
            if label == "CERTIFICATE":
                return der
    raise ValueError(f"no certificate in {crt_path}")


def cert_thumbprint(crt_path: str, alg: str) -> bytes:
    return hashlib.new(alg, cert_der(crt_path)).digest()


def cert_public_key(crt_path: str) -> RsaKey:
    """The RSA public key of a certificate (via openssl, to avoid an X.509 parser)."""
    out = subprocess.run(["openssl", "x509", "-in", crt_path, "-pubkey", "-noout"],
                         check=True, capture_output=True, text=True).stdout
    for label, der in _pem_blocks(out):
        if label == "PUBLIC KEY":
            return RsaKey.from_spki_der(der)
    raise ValueError(f"no public key in {crt_path}")
