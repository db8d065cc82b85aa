#!/usr/bin/env python3
"""Seeded, deterministic dataset generator.

It writes a plain directory tree: the emulator imports it as a document
library, and tests compare the mounted tree with it byte for byte, so the
tree is the truth. Same seed and profile -> identical bytes, names and mtimes.

Profiles:
  test   nested folders, CSV from bytes to ~2 MB, real .xlsx packages, names
         with spaces/unicode/#/%/&/+/apostrophes/brackets, many/ (5,000 small
         files), a 10-deep path, a zero-byte file, large/big.bin (64 MiB)
  demo   a small, realistic library for the README demo
  bench  like test with a 1 GiB large file, small64k/ (1,000 x 64 KiB), and
         optionally several large files for parallel readers
"""

import argparse
import io
import os
import random
import sys
import zipfile

FORBIDDEN = set('"*:<>?/\\|')
EPOCH_2024 = 1704067200  # 2024-01-01T00:00:00Z

REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = ["Widget", "Gadget", "Sprocket", "Gizmo", "Doohickey", "Contraption"]


def check_name(name):
    if (not name or set(name) & FORBIDDEN or name != name.strip()
            or name.endswith(".") or name in (".", "..")):
        raise ValueError(f"name SharePoint would refuse: {name!r}")


class Writer:
    """Writes files with deterministic mtimes (distinct whole seconds)."""

    def __init__(self, root, rng):
        self.root = root
        self.rng = rng
        self.clock = EPOCH_2024
        self.dirs = []

    def _tick(self):
        self.clock += self.rng.randint(60, 7200)
        return self.clock

    def path(self, rel):
        for part in rel.split("/"):
            check_name(part)
        return os.path.join(self.root, *rel.split("/"))

    def mkdir(self, rel):
        p = self.path(rel)
        os.makedirs(p, exist_ok=True)
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):  # every ancestor gets a set mtime
            prefix = "/".join(parts[:i])
            if prefix not in self.dirs:
                self.dirs.append(prefix)
        return p

    def write(self, rel, data):
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if parent:
            self.mkdir(parent)
        p = self.path(rel)
        with open(p, "wb") as f:
            f.write(data)
        t = self._tick()
        os.utime(p, (t, t))

    def write_stream(self, rel, size, seed):
        """A large file from a fast PRNG, streamed, never whole in memory."""
        parent = rel.rsplit("/", 1)[0]
        self.mkdir(parent)
        p = self.path(rel)
        r = random.Random(seed)
        left = size
        with open(p, "wb") as f:
            while left:
                n = min(left, 8 << 20)
                f.write(r.randbytes(n))
                left -= n
        t = self._tick()
        os.utime(p, (t, t))

    def finish(self):
        # Folder mtimes last: writing children changes them.
        for rel in sorted(self.dirs, key=lambda d: -d.count("/")):
            t = self._tick()
            os.utime(self.path(rel), (t, t))
        t = self._tick()
        os.utime(self.root, (t, t))


def csv_bytes(rng, rows):
    out = io.StringIO()
    out.write("date,region,product,units,unit_price,amount\n")
    day = EPOCH_2024
    for _ in range(rows):
        day += rng.randint(0, 86400)
        units = rng.randint(1, 500)
        price = rng.randint(100, 99999) / 100
        y, m, d = _ymd(day)
        out.write(f"{y:04d}-{m:02d}-{d:02d},{rng.choice(REGIONS)},{rng.choice(PRODUCTS)},"
                  f"{units},{price:.2f},{units * price:.2f}\n")
    return out.getvalue().encode()


def _ymd(t):
    import time as _t
    tm = _t.gmtime(t)
    return tm.tm_year, tm.tm_mon, tm.tm_mday


def xlsx_bytes(rng, rows, title="Sheet1"):
    """A minimal but valid SpreadsheetML package (opens in LibreOffice/Excel)."""
    cells = ['<row r="1"><c r="A1" t="inlineStr"><is><t>region</t></is></c>'
             '<c r="B1" t="inlineStr"><is><t>product</t></is></c>'
             '<c r="C1" t="inlineStr"><is><t>amount</t></is></c></row>']
    for i in range(2, rows + 2):
        cells.append(f'<row r="{i}"><c r="A{i}" t="inlineStr"><is><t>{rng.choice(REGIONS)}</t></is></c>'
                     f'<c r="B{i}" t="inlineStr"><is><t>{rng.choice(PRODUCTS)}</t></is></c>'
                     f'<c r="C{i}"><v>{rng.randint(100, 999999) / 100}</v></c></row>')
    parts = {
        "[Content_Types].xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '</Types>',
        "_rels/.rels":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            '</Relationships>',
        "xl/workbook.xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '</Relationships>',
        "xl/worksheets/sheet1.xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'<sheetData>{"".join(cells)}</sheetData></worksheet>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            # Fixed timestamps keep the bytes deterministic.
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
    return buf.getvalue()


def gen_test(w, rng, seed, large_size, many, bench=False):
    w.write("README.txt", b"Library generated by the spfs test dataset generator.\n")
    w.write("empty.csv", b"")
    w.write("tiny.csv", b"a\n")
    sizes = [10, 100, 1000, 5000, 20000]
    for i, rows in enumerate(sizes):
        w.write(f"reports/2026/q{i + 1}.csv", csv_bytes(rng, rows))
    w.write("reports/big-export.csv", csv_bytes(rng, 45000))  # ~2 MB
    w.write("reports/summary.xlsx", xlsx_bytes(rng, 50))
    w.write("reports/rewritten.xlsx", xlsx_bytes(rng, 200, "Rewritten"))
    w.write("finance/budget 2026.xlsx", xlsx_bytes(rng, 120, "Budget"))
    odd = ["Q3 #1.csv", "50% off.csv", "R&D + ops.csv", "O'Brien's notes.csv",
           "[draft] plan (v2).csv", "café résumé.csv", "日本語のファイル.csv",
           "spaced  inside.csv", "a,b;c=d!.csv", "~tilde.csv"]
    for name in odd:
        w.write(f"names/{name}", csv_bytes(rng, rng.randint(1, 30)))
    w.write("names/日本語/中身.csv", csv_bytes(rng, 5))
    w.write("names/Ünïcödé folder/é.csv", csv_bytes(rng, 5))
    deep = "/".join(f"d{i}" for i in range(1, 11))
    w.write(f"deep/{deep}/leaf.csv", csv_bytes(rng, 3))
    for i in range(1, many + 1):
        w.write(f"many/file-{i:05d}.csv", f"id,value\n{i},{rng.randint(0, 1 << 30)}\n".encode())
    w.mkdir("empty folder")
    w.write_stream("large/big.bin", large_size, seed * 1000 + 1)
    if bench:
        payload = random.Random(seed * 1000 + 2)
        for i in range(1, 1001):
            w.write(f"small64k/f{i:04d}.csv", payload.randbytes(65536))


def gen_demo(w, rng):
    w.write("README.txt",
            b"Welcome to the spfs demo library.\n"
            b"These files are served by a local SharePoint/Graph emulator;\n"
            b"spfs reads them exactly as it would read a real document library.\n")
    w.write("reports/q3.csv", csv_bytes(rng, 40))
    w.write("reports/q4.csv", csv_bytes(rng, 40))
    w.write("reports/2026/summary.xlsx", xlsx_bytes(rng, 30, "Summary"))
    w.write("finance/budget 2026.xlsx", xlsx_bytes(rng, 60, "Budget"))
    w.write("finance/invoices/2026-10.csv", csv_bytes(rng, 120))
    w.write("hr/headcount by region.csv",
            b"region,headcount\n" + b"".join(
                f"{r},{rng.randint(10, 400)}\n".encode() for r in REGIONS))
    w.write("Shared with partners/Préstamo & costes.csv", csv_bytes(rng, 12))


def generate(out, profile, seed=1, large_size=None, many=None, force=False):
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise FileExistsError(f"{out} is not empty")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(f"{profile}:{seed}")
    w = Writer(out, rng)
    if profile == "test":
        gen_test(w, rng, seed, 64 << 20 if large_size is None else large_size,
                 5000 if many is None else many)
    elif profile == "bench":
        gen_test(w, rng, seed, 1 << 30 if large_size is None else large_size,
                 5000 if many is None else many, bench=True)
    elif profile == "demo":
        gen_demo(w, rng)
    else:
        raise ValueError(f"unknown profile {profile!r}")
    w.finish()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="generate a deterministic document library tree")
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", choices=["test", "demo", "bench"], default="test")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--large-size", type=int, default=None, help="bytes of large/big.bin")
    ap.add_argument("--many", type=int, default=None, help="files in many/ (default 5000)")
    ap.add_argument("--force", action="store_true", help="write into a non-empty directory")
    a = ap.parse_args(argv)
    generate(a.out, a.profile, a.seed, a.large_size, a.many, a.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
