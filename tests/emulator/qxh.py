"""quickXorHash (width 160, shift 11), fast enough for gigabyte files.

Byte i is rotated by 11*i mod 160 bits; 11 is coprime with 160, so every
byte whose offset agrees modulo 160 gets the same rotation. We XOR-fold the
data into 160 lanes with big-integer arithmetic (C speed) and rotate the
160 lanes once at the end.
"""

import base64

_PERIOD = 160
_BLOCK = _PERIOD * 4096  # fold unit: 160 * 2**12 bytes


def _fold(block: bytes) -> bytes:
    """XOR of all 160-byte rows of block (len a multiple of 160)."""
    rows = len(block) // _PERIOD
    x = int.from_bytes(block, "little")
    width = rows * _PERIOD * 8
    # Halve while the row count is even; the rest row by row.
    while rows > 1 and rows % 2 == 0:
        width //= 2
        x = (x >> width) ^ (x & ((1 << width) - 1))
        rows //= 2
    acc = 0
    mask = (1 << (_PERIOD * 8)) - 1
    for _ in range(rows):
        acc ^= x & mask
        x >>= _PERIOD * 8
    return acc.to_bytes(_PERIOD, "little")


class QuickXorHash:
    def __init__(self):
        self._lanes = 0  # 160 lanes as one little-endian integer
        self._length = 0

    def update(self, data: bytes):
        if not data:
            return
        phase = self._length % _PERIOD
        self._length += len(data)
        # Zero padding in front aligns the data to a row boundary; zeros do
        # not change an XOR, and the true length is kept in _length.
        data = bytes(phase) + bytes(data)
        whole = len(data) - len(data) % _PERIOD
        for off in range(0, whole, _BLOCK):
            chunk = data[off:min(off + _BLOCK, whole)]
            self._lanes ^= int.from_bytes(_fold(chunk), "little")
        tail = data[whole:]
        if tail:
            self._lanes ^= int.from_bytes(tail, "little")

    def digest(self) -> bytes:
        lanes = self._lanes.to_bytes(_PERIOD, "little")
        acc = 0
        for r, v in enumerate(lanes):
            if v:
                shift = (11 * r) % _PERIOD
                rotated = (v << shift) | (v >> (_PERIOD - shift))
                acc ^= rotated & ((1 << _PERIOD) - 1)
        out = bytearray(acc.to_bytes(20, "little"))
        for j in range(8):
            out[12 + j] ^= (self._length >> (8 * j)) & 0xFF
        return bytes(out)

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def quickxorhash(data: bytes) -> str:
    h = QuickXorHash()
    h.update(data)
    return h.b64()


def file_quickxorhash(path: str) -> str:
    h = QuickXorHash()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_BLOCK * 4)
            if not chunk:
                break
            h.update(chunk)
    return h.b64()
