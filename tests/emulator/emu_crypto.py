"""Crypto for the emulator, Python standard library only.

RSA is done with pow() on integers parsed from DER: enough to sign the
tokens we mint (RS256) and to verify what clients send (RS256, PS256), as
Entra ID does. Keys and certificates are made with the openssl CLI, which is
what a cluster operator would use too; nothing here depends on the system's
openssl.cnf, so the same certificates come out on every machine.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile


class JwtError(Exception):
    """A JWT that is malformed or fails verification."""


# ---- base64url ------------------------------------------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    """Inverse of b64url_encode. Padding is optional but must be right if
    present; the stdlib decoder would silently skip stray characters, so
    they are rejected here (ValueError)."""
    if isinstance(s, bytes):
        s = s.decode("ascii")
    body = s.rstrip("=")
    if not _B64URL.fullmatch(body):
        raise ValueError("character outside the base64url alphabet")
    if len(body) % 4 == 1:
        raise ValueError("impossible base64url length")
    if len(s) != len(body) and len(s) % 4:
        raise ValueError("wrong base64url padding")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


# ---- DER and PEM ----------------------------------------------------------

_INTEGER, _BIT_STRING, _OCTET_STRING, _NULL, _OID, _SEQUENCE = 0x02, 0x03, 0x04, 0x05, 0x06, 0x30
_RSA_ALG = bytes.fromhex("06092a864886f70d0101010500")  # OID rsaEncryption, NULL


def _der_element(data: bytes, pos: int, end: int):
    """(tag, content_start, content_end) of the element at pos; ValueError if
    it does not fit before end."""
    if pos + 2 > end:
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > end:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > end:
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _der_sequence(data: bytes) -> list:
    """The children [(tag, content)] of the SEQUENCE that spans all of data."""
    tag, pos, end = _der_element(data, 0, len(data))
    if tag != _SEQUENCE or end != len(data):
        raise ValueError("expected one DER SEQUENCE")
    children = []
    while pos < end:
        tag, start, pos = _der_element(data, pos, end)
        children.append((tag, data[start:pos]))
    return children


def _der_uint(element) -> int:
    tag, content = element
    if tag != _INTEGER or not content or content[0] & 0x80:
        raise ValueError("expected a non-negative DER INTEGER")
    return int.from_bytes(content, "big")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(content)) + content


def _der_int(n: int) -> bytes:
    # One extra bit keeps the sign bit clear (DER INTEGER is two's complement).
    return _der(_INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big"))


_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)


def _pem_blocks(text: str):
    """Yields (label, der) for each PEM block."""
    for m in _PEM.finditer(text):
        try:
            yield m.group(1), base64.b64decode("".join(m.group(2).split()), validate=True)
        except binascii.Error as e:
            raise ValueError(f"bad base64 in PEM block {m.group(1)}: {e}") from None


def _read_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def _write_private(path: str, data: bytes) -> None:
    """Writes a secret readable by its owner only, even if path existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)
        f.write(data)


# ---- RSA keys -------------------------------------------------------------

class RsaKey:
    """An RSA key: n, e, and d when private (d is None for public keys)."""

    def __init__(self, n: int, e: int, d: int | None = None):
        if n < 3 or e < 3 or not e & 1:
            raise ValueError("not an RSA key")
        self.n, self.e, self.d = n, e, d

    @property
    def size(self) -> int:
        """Modulus length in bytes (the signature length)."""
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def generate(cls, pem_path: str, bits: int = 2048) -> "RsaKey":
        """A new key written to pem_path (PKCS#8 PEM, mode 0600)."""
        pem = _openssl_out("genrsa", str(bits))
        _write_private(pem_path, pem)
        return cls.from_pem(pem.decode("ascii"))

    @classmethod
    def load_pem(cls, path: str) -> "RsaKey":
        return cls.from_pem(_read_text(path))

    @classmethod
    def from_pem(cls, text: str) -> "RsaKey":
        """The first key in text: RSA PRIVATE KEY (PKCS#1), PRIVATE KEY
        (PKCS#8) or PUBLIC KEY (SubjectPublicKeyInfo)."""
        for label, der in _pem_blocks(text):
            if label == "RSA PRIVATE KEY":
                return cls._from_pkcs1_private(der)
            if label == "PRIVATE KEY":
                # SEQUENCE { version, AlgorithmIdentifier, OCTET STRING { PKCS#1 } }
                children = _der_sequence(der)
                if len(children) < 3 or _der(*children[1]) != _der(_SEQUENCE, _RSA_ALG) \
                        or children[2][0] != _OCTET_STRING:
                    raise ValueError("PKCS#8 key is not an unencrypted RSA key")
                return cls._from_pkcs1_private(children[2][1])
            if label == "PUBLIC KEY":
                return cls.from_spki_der(der)
            if label == "ENCRYPTED PRIVATE KEY":
                raise ValueError("encrypted private keys are not supported")
        raise ValueError("no RSA key in PEM text")

    @classmethod
    def _from_pkcs1_private(cls, der: bytes) -> "RsaKey":
        # SEQUENCE { version, n, e, d, p, q, dp, dq, qinv }
        children = _der_sequence(der)
        if len(children) < 9:
            raise ValueError("short PKCS#1 private key")
        _, n, e, d = (_der_uint(c) for c in children[:4])
        return cls(n, e, d)

    @classmethod
    def from_spki_der(cls, der: bytes) -> "RsaKey":
        # SEQUENCE { AlgorithmIdentifier, BIT STRING { SEQUENCE { n, e } } }
        children = _der_sequence(der)
        if len(children) != 2 or _der(*children[0]) != _der(_SEQUENCE, _RSA_ALG):
            raise ValueError("not an RSA SubjectPublicKeyInfo")
        tag, bits = children[1]
        if tag != _BIT_STRING or not bits or bits[0] != 0:
            raise ValueError("bad SubjectPublicKeyInfo BIT STRING")
        n, e = (_der_uint(c) for c in _der_sequence(bits[1:])[:2])
        return cls(n, e)

    @classmethod
    def from_jwk(cls, jwk: dict) -> "RsaKey":
        if jwk.get("kty") != "RSA" or not isinstance(jwk.get("n"), str) \
                or not isinstance(jwk.get("e"), str):
            raise ValueError("not an RSA JWK")
        return cls(int.from_bytes(b64url_decode(jwk["n"]), "big"),
                   int.from_bytes(b64url_decode(jwk["e"]), "big"))

    def public(self) -> "RsaKey":
        return RsaKey(self.n, self.e)

    def public_der(self) -> bytes:
        """SubjectPublicKeyInfo DER, byte-identical to `openssl rsa -pubout -outform DER`."""
        pkcs1 = _der(_SEQUENCE, _der_int(self.n) + _der_int(self.e))
        return _der(_SEQUENCE, _der(_SEQUENCE, _RSA_ALG) + _der(_BIT_STRING, b"\x00" + pkcs1))

    def kid(self) -> str:
        """azwi's kid: base64url(SHA-256(SPKI DER))."""
        return b64url_encode(hashlib.sha256(self.public_der()).digest())

    def public_jwk(self) -> dict:
        return {"use": "sig", "kty": "RSA", "kid": self.kid(), "alg": "RS256",
                "n": b64url_encode(self.n.to_bytes(self.size, "big")),
                "e": b64url_encode(self.e.to_bytes((self.e.bit_length() + 7) // 8, "big"))}


# ---- signatures (RFC 8017) ------------------------------------------------

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_HLEN = 32      # SHA-256
_PSS_SALT = 32  # what MSAL and OpenSSL use for PS256: the digest length


def _mgf1(seed: bytes, length: int) -> bytes:
    blocks = (length + _HLEN - 1) // _HLEN
    return b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                    for i in range(blocks))[:length]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _pkcs1v15_encode(msg: bytes, k: int) -> bytes:
    t = _SHA256_DIGEST_INFO + hashlib.sha256(msg).digest()
    return b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def _pss_m_prime_hash(msg: bytes, salt: bytes) -> bytes:
    return hashlib.sha256(b"\x00" * 8 + hashlib.sha256(msg).digest() + salt).digest()


def _check_alg(alg: str) -> None:
    if alg not in ("RS256", "PS256"):
        raise ValueError(f"unsupported alg {alg!r}")


def rsa_sign(key: RsaKey, msg: bytes, alg: str) -> bytes:
    """RS256 (PKCS#1 v1.5) or PS256 (PSS, MGF1-SHA256, 32-byte salt) signature."""
    _check_alg(alg)
    if key.d is None:
        raise ValueError("a public key cannot sign")
    if alg == "RS256":
        em = _pkcs1v15_encode(msg, key.size)
    else:
        em_bits = key.n.bit_length() - 1
        em_len = (em_bits + 7) // 8
        if em_len < _HLEN + _PSS_SALT + 2:
            raise ValueError("key too small for PS256")
        salt = os.urandom(_PSS_SALT)
        h = _pss_m_prime_hash(msg, salt)
        db = b"\x00" * (em_len - _PSS_SALT - _HLEN - 2) + b"\x01" + salt
        masked = bytearray(_xor(db, _mgf1(h, len(db))))
        masked[0] &= 0xFF >> (8 * em_len - em_bits)
        em = bytes(masked) + h + b"\xbc"
    return pow(int.from_bytes(em, "big"), key.d, key.n).to_bytes(key.size, "big")


def rsa_verify(pubkey: RsaKey, msg: bytes, sig: bytes, alg: str) -> bool:
    """Checks an RS256 or PS256 signature. PSS accepts any salt length (it is
    recovered from the padding, RFC 8017 EMSA-PSS-VERIFY), so 32 and the
    maximum both verify."""
    _check_alg(alg)
    k = pubkey.size
    s = int.from_bytes(sig, "big")
    if len(sig) != k or s >= pubkey.n:
        return False
    m = pow(s, pubkey.e, pubkey.n)
    if alg == "RS256":
        return hmac.compare_digest(m.to_bytes(k, "big"), _pkcs1v15_encode(msg, k))
    em_bits = pubkey.n.bit_length() - 1
    em_len = (em_bits + 7) // 8
    if m.bit_length() > em_bits or em_len < _HLEN + 2:
        return False
    em = m.to_bytes(em_len, "big")
    if em[-1] != 0xBC:
        return False
    masked, h = em[:em_len - _HLEN - 1], em[em_len - _HLEN - 1:-1]
    db = bytearray(_xor(masked, _mgf1(h, len(masked))))
    db[0] &= 0xFF >> (8 * em_len - em_bits)
    sep = len(db) - len(bytes(db).lstrip(b"\x00"))  # first non-zero byte must be 0x01
    if sep == len(db) or db[sep] != 1:
        return False
    return hmac.compare_digest(_pss_m_prime_hash(msg, bytes(db[sep + 1:])), h)


# ---- JWT ------------------------------------------------------------------

def _compact_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def jwt_encode(header: dict, payload: dict, key: RsaKey) -> str:
    """Compact JWS; the algorithm is header["alg"]."""
    signing_input = b64url_encode(_compact_json(header)) + "." + b64url_encode(_compact_json(payload))
    return signing_input + "." + b64url_encode(rsa_sign(key, signing_input.encode("ascii"), header["alg"]))


def jwt_decode_unverified(token: str) -> tuple[dict, dict, bytes, bytes]:
    """(header, payload, signing_input, signature), without checking anything
    but the form. A token with surrounding whitespace is malformed: clients
    must strip the newline a token file may end with (PROTOCOL.md 1.3)."""
    if not isinstance(token, str):
        raise JwtError("a JWT is a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("a compact JWT has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except ValueError as e:  # includes JSONDecodeError and UnicodeDecodeError
        raise JwtError(f"malformed JWT: {e}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JwtError("JWT header and payload must be JSON objects")
    return header, payload, (parts[0] + "." + parts[1]).encode("ascii"), sig


def jwt_verify(token: str, keys, algs=("RS256",)) -> tuple[dict, dict]:
    """(header, payload) of a token whose signature verifies with keys (a
    dict kid -> RsaKey, or one RsaKey); JwtError otherwise. Claims such as
    exp are the caller's business: Entra and Graph check different ones."""
    header, payload, signing_input, sig = jwt_decode_unverified(token)
    alg = header.get("alg")
    if alg not in algs:
        raise JwtError(f"unsupported alg {alg!r}")
    if "crit" in header:
        raise JwtError("unsupported critical header parameters")
    if isinstance(keys, RsaKey):
        key = keys
    else:
        key = keys.get(header.get("kid"))
        if key is None:
            raise JwtError("unknown kid")
    if not rsa_verify(key, signing_input, sig, alg):
        raise JwtError("bad signature")
    return header, payload


# ---- PKI via the openssl CLI ----------------------------------------------

def _openssl_out(*args: str) -> bytes:
    try:
        return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout
    except FileNotFoundError:
        raise RuntimeError("the openssl command is not installed") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"openssl {args[0]} failed: {e.stderr.decode(errors='replace').strip()}") from None


def _openssl_with_file(flag: str, text: str, *args: str) -> None:
    """Runs openssl with text as the file named by flag (-config, -extfile):
    with our own config the system's openssl.cnf, which differs between
    distributions, plays no part."""
    fd, path = tempfile.mkstemp(prefix="spfs-openssl-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        _openssl_out(*args, flag, path)
    finally:
        os.unlink(path)


def _subject(cn: str) -> str:
    """-subj argument; openssl takes a backslash before any special character."""
    return "/CN=" + re.sub(r"([\\/+=,])", r"\\\1", cn)


def _serial() -> str:
    return "0x" + (int.from_bytes(os.urandom(16), "big") >> 1).to_bytes(16, "big").hex()


def _new_key(path: str) -> None:
    _write_private(path, _openssl_out("genrsa", "2048"))


_REQ_CONFIG = """[req]
distinguished_name = dn
x509_extensions = ext
[dn]
[ext]
"""


def make_ca(dirpath: str, cn: str = "spfs test CA") -> tuple[str, str]:
    """A self-signed CA (10 years) as dirpath/ca.crt and dirpath/ca.key."""
    crt, key = os.path.join(dirpath, "ca.crt"), os.path.join(dirpath, "ca.key")
    _new_key(key)
    _openssl_with_file(
        "-config", _REQ_CONFIG + "basicConstraints = critical,CA:TRUE,pathlen:0\n"
        "keyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
        "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "3650",
        "-sha256", "-subj", _subject(cn), "-set_serial", _serial())
    return crt, key


def make_server_cert(dirpath: str, ca_crt: str, ca_key: str, dns_names=("localhost",),
                     ips=("127.0.0.1",), name: str = "server") -> tuple[str, str]:
    """A TLS server certificate signed by the CA: SAN, serverAuth, and the
    key identifiers that strict verifiers (OpenSSL 3, Python >= 3.13) need."""
    names = [f"DNS:{d}" for d in dns_names] + [f"IP:{i}" for i in ips]
    if not names:
        raise ValueError("a server certificate needs at least one DNS name or IP")
    crt, key = os.path.join(dirpath, f"{name}.crt"), os.path.join(dirpath, f"{name}.key")
    csr = os.path.join(dirpath, f"{name}.csr")
    _new_key(key)
    try:
        _openssl_with_file("-config", _REQ_CONFIG, "req", "-new", "-key", key, "-out", csr,
                             "-subj", _subject((list(dns_names) + list(ips))[0]))
        _openssl_with_file(
            "-extfile", "basicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            f"subjectAltName = {','.join(names)}\n"
            "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
            "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
            "-set_serial", _serial(), "-days", "3650", "-sha256", "-out", crt)
    finally:
        if os.path.exists(csr):
            os.unlink(csr)
    return crt, key


def make_client_cert(dirpath: str, cn: str, name: str = "client") -> tuple[str, str]:
    """A self-signed certificate (10 years) for the Entra client-certificate flow."""
    crt, key = os.path.join(dirpath, f"{name}.crt"), os.path.join(dirpath, f"{name}.key")
    _new_key(key)
    _openssl_with_file(
        "-config", _REQ_CONFIG + "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n"
        "subjectKeyIdentifier = hash\n",
        "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "3650",
        "-sha256", "-subj", _subject(cn), "-set_serial", _serial())
    return crt, key


def cert_der(crt_path: str) -> bytes:
    """DER of the first certificate in a PEM file."""
    for label, der in _pem_blocks(_read_text(crt_path)):
        if label == "CERTIFICATE":
            return der
    raise ValueError(f"no certificate in {crt_path}")


def cert_thumbprint(crt_path: str, alg: str) -> bytes:
    """Raw digest of the certificate DER: what x5t (sha1) and x5t#S256 (sha256) encode."""
    if alg not in ("sha1", "sha256"):
        raise ValueError(f"unsupported thumbprint algorithm {alg!r}")
    return hashlib.new(alg, cert_der(crt_path)).digest()


def cert_public_key(crt_path: str) -> RsaKey:
    """The RSA public key of a certificate."""
    # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial,
    #   signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }
    tag, tbs = _der_sequence(cert_der(crt_path))[0]
    if tag != _SEQUENCE:
        raise ValueError("bad certificate")
    fields = _der_sequence(_der(tag, tbs))
    if fields and fields[0][0] == 0xA0:  # explicit version
        fields = fields[1:]
    if len(fields) < 6:
        raise ValueError("bad certificate")
    spki = fields[5]
    return RsaKey.from_spki_der(_der(*spki))
