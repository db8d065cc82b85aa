"""quickXorHash (PROTOCOL.md 10), fast enough for gigabyte files in pure Python.

Byte i is rotated by (11*i) mod 160 bits. Since 11 is coprime with 160, all
bytes whose offsets agree modulo 160 get the same rotation, so we first XOR
the data into 160 one-byte lanes (lane r collects offsets = r mod 160) and
rotate each lane once, at digest time. The lane folding runs on big integers:
a block of 160 * 2**k bytes is one int whose halves are XORed k times, which
keeps the per-byte work in C (several hundred MB/s).
"""

import base64

_WIDTH = 160                 # accumulator bits
_ROW = 160                   # bytes per rotation period: (11*i) mod 160 repeats every 160 bytes
# 80 KiB blocks: large enough to amortize the Python overhead, and every
# intermediate int stays below glibc's initial mmap threshold (128 KiB), so
# a cold process does not pay page faults for each block.
_BLOCK_ROWS_LOG2 = 9
_BLOCK = _ROW << _BLOCK_ROWS_LOG2
_READ_SIZE = 16 * _BLOCK


def _fold(block) -> int:
    """XOR of the 160-byte rows of a _BLOCK-sized bytes-like, as a little-endian int."""
    x = int.from_bytes(block, "little")
    width = _BLOCK * 8
    for _ in range(_BLOCK_ROWS_LOG2):
        width >>= 1
        x = (x >> width) ^ (x & ((1 << width) - 1))
    return x


class QuickXorHash:
    """Streaming quickXorHash; update() accepts any chunking."""

    def __init__(self):
        self._lanes = 0          # lane r is byte r of this little-endian int
        self._length = 0
        self._pending = bytearray()  # < _BLOCK bytes, starting at a row boundary

    def update(self, data) -> None:
        view = memoryview(data).cast("B")
        self._length += len(view)
        pos = 0
        if self._pending:
            pos = min(len(view), _BLOCK - len(self._pending))
            self._pending += view[:pos]
            if len(self._pending) < _BLOCK:
                return
            self._lanes ^= _fold(self._pending)
            self._pending.clear()
        end = pos + (len(view) - pos) // _BLOCK * _BLOCK
        for off in range(pos, end, _BLOCK):
            self._lanes ^= _fold(view[off:off + _BLOCK])
        self._pending += view[end:]

    def digest(self) -> bytes:
        # Zero padding does not change an XOR; the true length is folded in below.
        tail = _fold(self._pending + bytes(_BLOCK - len(self._pending)))
        lanes = (self._lanes ^ tail).to_bytes(_ROW, "little")
        acc = 0
        for r, v in enumerate(lanes):
            if v:
                shift = (11 * r) % _WIDTH
                acc ^= (v << shift) | (v >> (_WIDTH - shift))
        out = bytearray((acc & ((1 << _WIDTH) - 1)).to_bytes(_WIDTH // 8, "little"))
        for j in range(8):
            out[12 + j] ^= (self._length >> (8 * j)) & 0xFF
        return bytes(out)

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def quickxorhash(data) -> str:
    """Base64 quickXorHash of a bytes-like, as Graph's file.hashes.quickXorHash."""
    h = QuickXorHash()
    h.update(data)
    return h.b64()


def file_quickxorhash(path) -> str:
    h = QuickXorHash()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_SIZE):
            h.update(chunk)
    return h.b64()
