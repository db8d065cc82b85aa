#!/usr/bin/env python3
"""Seeded, deterministic dataset generator.

It writes a plain directory tree: the emulator imports it as a document
library, and tests compare the mounted tree with it byte for byte, so the
tree is the truth. Same profile and seed -> identical names, bytes and mtimes.

Profiles:
  test   nested folders, CSV from bytes to ~2 MB, real .xlsx packages, names
         with spaces, unicode, # % & + ' [ ] ( ), many/ (5,000 tiny files),
         a 10-deep path, a zero-byte file, large/big.bin (64 MiB),
         reports/rewritten.xlsx (served rewritten by the emulator)
  demo   a small, realistic library for the README demo
  bench  like test with a 1 GiB large/big.bin, small64k/ (1,000 x 64 KiB)
         and, with --parallel-files N, large/big-2.bin ... big-N.bin
"""

import argparse
import calendar
import io
import os
import random
import re
import sys
import time
import zipfile
from xml.sax.saxutils import escape

MTIME_FIRST = calendar.timegm((2024, 1, 1, 0, 0, 0))
MTIME_END = calendar.timegm((2027, 1, 1, 0, 0, 0))  # exclusive: mtimes fall in 2024-2026
STREAM_BLOCK = 8 << 20

REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = ["Widget", "Gadget", "Sprocket", "Gizmo", "Doohickey", "Contraption"]

# SharePoint's rules (PROTOCOL.md 11), taking the stricter side where sources disagree.
_FORBIDDEN = re.compile(r'["*:<>?/\\|\x00-\x1f\x7f]')
_RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?|\.lock|desktop\.ini", re.I)
MAX_PATH = 399


def check_path(rel: str, folder: bool = False) -> None:
    """ValueError if SharePoint would refuse the library-relative path rel."""
    if len(rel) > MAX_PATH:
        raise ValueError(f"path longer than {MAX_PATH} characters: {rel!r}")
    parts = rel.split("/")
    for i, name in enumerate(parts):
        is_folder = folder or i < len(parts) - 1
        if (not name or _FORBIDDEN.search(name) or name != name.strip() or name.endswith(".")
                or name.startswith("~") or _RESERVED.fullmatch(name) or "_vti_" in name.lower()
                or (i == 0 and is_folder and name.lower() == "forms")):
            raise ValueError(f"name SharePoint would refuse: {name!r} in {rel!r}")


class Stream:
    """Content too big to hold: size bytes from random.Random(seed), made on write."""

    def __init__(self, size: int, seed: str):
        self.size, self.seed = size, seed

    def chunks(self):
        rng = random.Random(self.seed)
        left = self.size
        while left:
            n = min(left, STREAM_BLOCK)
            yield rng.randbytes(n)
            left -= n


class Plan:
    """The tree to write: files (bytes or Stream) and folders, in order."""

    def __init__(self):
        self.files = {}      # rel -> bytes | Stream
        self.folders = {}    # rel -> None (an ordered set): ancestors of files, empty folders

    def file(self, rel: str, content) -> None:
        check_path(rel)
        if rel in self.files:
            raise ValueError(f"duplicate path {rel!r}")
        self.files[rel] = content
        self.folder(rel.rpartition("/")[0])

    def folder(self, rel: str) -> None:
        parts = rel.split("/") if rel else []
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix not in self.folders:
                check_path(prefix, folder=True)
                self.folders[prefix] = None

    def write(self, root: str, rng: random.Random) -> None:
        """Writes every entry with its own whole-second mtime: strictly
        increasing, so distinct, and spread over 2024-2026 whatever the count."""
        clock = MTIME_FIRST
        max_step = (MTIME_END - MTIME_FIRST) // (len(self.files) + len(self.folders) + 2)

        def stamp(path):
            nonlocal clock
            clock += rng.randint(1, max_step)
            os.utime(path, (clock, clock))

        for rel in self.folders:
            os.makedirs(os.path.join(root, rel), exist_ok=True)
        for rel, content in self.files.items():
            path = os.path.join(root, rel)
            with open(path, "wb") as f:
                for chunk in content.chunks() if isinstance(content, Stream) else (content,):
                    f.write(chunk)
            stamp(path)
        # Folders last, deepest first: creating children changes a folder's mtime.
        for rel in sorted(self.folders, key=lambda r: -r.count("/")):
            stamp(os.path.join(root, rel))
        stamp(root)


# ---- content ---------------------------------------------------------------

def csv_bytes(rng: random.Random, rows: int) -> bytes:
    """Sales rows as a spreadsheet export would have them (~45 bytes a row)."""
    out = io.StringIO()
    out.write("date,region,product,units,unit_price,amount\n")
    day = MTIME_FIRST
    for _ in range(rows):
        day += rng.randint(0, 86400)
        units = rng.randint(1, 500)
        cents = rng.randint(100, 99999)
        out.write(f"{time.strftime('%Y-%m-%d', time.gmtime(day))},{rng.choice(REGIONS)},"
                  f"{rng.choice(PRODUCTS)},{units},{cents / 100:.2f},{units * cents / 100:.2f}\n")
    return out.getvalue().encode()


_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def xlsx_bytes(rng: random.Random, rows: int, title: str = "Sheet1") -> bytes:
    """A minimal but valid SpreadsheetML package (opens in LibreOffice and
    Excel) with inline strings, so no sharedStrings part is needed."""
    def text(ref, s):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(s)}</t></is></c>'

    cells = ['<row r="1">' + text("A1", "region") + text("B1", "product") + text("C1", "amount") + "</row>"]
    for i in range(2, rows + 2):
        cells.append(f'<row r="{i}">{text(f"A{i}", rng.choice(REGIONS))}{text(f"B{i}", rng.choice(PRODUCTS))}'
                     f'<c r="C{i}"><v>{rng.randint(100, 999999) / 100}</v></c></row>')
    parts = {
        "[Content_Types].xml": _XML +
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
            '</Types>',
        "_rels/.rels": _XML +
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
            '</Relationships>',
        "xl/workbook.xml": _XML +
            f'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{_REL}">'
            f'<sheets><sheet name="{escape(title)}" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": _XML +
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            '</Relationships>',
        "xl/worksheets/sheet1.xml": _XML +
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'<sheetData>{"".join(cells)}</sheetData></worksheet>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, xml in parts.items():
            # Fixed metadata keeps the bytes deterministic.
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, xml)
    return buf.getvalue()


# ---- profiles --------------------------------------------------------------

ODD_NAMES = ["Q3 #1.csv", "50% off.csv", "%20 literal.csv", "R&D + ops.csv", "O'Brien's notes.csv",
             "[draft] plan (v2).csv", "café résumé.csv", "日本語のファイル.csv", "spaced  inside.csv",
             "a,b;c=d!.csv", "tilde~inside.csv", "MixedCase.CSV"]


def plan_test(plan: Plan, rng: random.Random, seed: int, large_size: int, many: int) -> None:
    plan.file("README.txt", b"Library generated by the spfs test dataset generator.\n")
    plan.file("empty.csv", b"")
    plan.file("tiny.csv", b"a\n")
    for i, rows in enumerate([10, 100, 1000, 5000, 20000], start=1):
        plan.file(f"reports/2026/q{i}.csv", csv_bytes(rng, rows))
    plan.file("reports/big-export.csv", csv_bytes(rng, 45000))  # ~2 MB
    plan.file("reports/summary.xlsx", xlsx_bytes(rng, 50, "Summary"))
    plan.file("reports/rewritten.xlsx", xlsx_bytes(rng, 200, "Rewritten"))
    plan.file("finance/budget 2026.xlsx", xlsx_bytes(rng, 120, "Budget"))
    for name in ODD_NAMES:
        plan.file(f"names/{name}", csv_bytes(rng, rng.randint(1, 30)))
    plan.file("names/日本語/中身.csv", csv_bytes(rng, 5))
    plan.file("names/Ünïcödé folder/é.csv", csv_bytes(rng, 5))
    plan.file("names/#1 & 'two' [3] (4) + 5%/data.csv", csv_bytes(rng, 5))
    plan.file("deep/" + "/".join(f"d{i}" for i in range(1, 11)) + "/leaf.csv", csv_bytes(rng, 3))
    for i in range(1, many + 1):
        plan.file(f"many/file-{i:05d}.csv", f"id,value\n{i},{rng.randint(0, 1 << 30)}\n".encode())
    plan.folder("empty folder")
    plan.file("large/big.bin", Stream(large_size, f"big:{seed}"))


def plan_bench(plan: Plan, rng: random.Random, seed: int, large_size: int, many: int,
               parallel_files: int, small_files: int = 1000, parallel_size: int | None = None) -> None:
    plan_test(plan, rng, seed, large_size, many)
    for i in range(2, parallel_files + 1):
        plan.file(f"large/big-{i}.bin",
                  Stream(large_size if parallel_size is None else parallel_size, f"big-{i}:{seed}"))
    for i in range(1, small_files + 1):
        plan.file(f"small64k/file-{i:04d}.bin", Stream(64 << 10, f"small:{i}:{seed}"))


def plan_demo(plan: Plan, rng: random.Random) -> None:
    plan.file("README.txt",
              b"Welcome to the spfs demo library.\n"
              b"These files are served by a local SharePoint/Graph emulator;\n"
              b"spfs reads them exactly as it would read a real document library.\n")
    plan.file("reports/q3.csv", csv_bytes(rng, 40))
    plan.file("reports/q4.csv", csv_bytes(rng, 40))
    plan.file("reports/2026/summary.xlsx", xlsx_bytes(rng, 30, "Summary"))
    plan.file("finance/budget 2026.xlsx", xlsx_bytes(rng, 60, "Budget"))
    plan.file("finance/invoices/2026-10.csv", csv_bytes(rng, 120))
    plan.file("hr/headcount by region.csv",
              b"region,headcount\n" + b"".join(f"{r},{rng.randint(10, 400)}\n".encode() for r in REGIONS))
    plan.file("Shared with partners/Préstamo & costes.csv", csv_bytes(rng, 12))


def generate(out: str, profile: str, seed: int = 1, large_size: int | None = None,
             many: int | None = None, force: bool = False, parallel_files: int = 1,
             small_files: int = 1000, parallel_size: int | None = None) -> str:
    """Writes the profile's tree into out (which must be empty unless force)."""
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise FileExistsError(f"{out} is not empty (--force writes into it anyway)")
    if (large_size is not None and large_size < 0) or (many is not None and many < 0):
        raise ValueError("sizes and counts must not be negative")
    if parallel_files < 1 or (parallel_files > 1 and profile != "bench"):
        raise ValueError("parallel_files is a positive count, above 1 only for the bench profile")
    rng = random.Random(f"{profile}:{seed}")
    plan = Plan()
    many = 5000 if many is None else many
    if profile == "test":
        plan_test(plan, rng, seed, 64 << 20 if large_size is None else large_size, many)
    elif profile == "bench":
        plan_bench(plan, rng, seed, 1 << 30 if large_size is None else large_size, many,
                   parallel_files, small_files, parallel_size)
    elif profile == "demo":
        plan_demo(plan, rng)
    else:
        raise ValueError(f"unknown profile {profile!r}")
    os.makedirs(out, exist_ok=True)
    plan.write(out, random.Random(f"mtime:{profile}:{seed}"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write a deterministic document-library tree.")
    ap.add_argument("--out", required=True, help="directory to write (must be empty)")
    ap.add_argument("--profile", choices=["test", "demo", "bench"], default="test")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--large-size", type=int, help="bytes of each large/*.bin (test 64 MiB, bench 1 GiB)")
    ap.add_argument("--many", type=int, help="files in many/ (default 5000)")
    ap.add_argument("--parallel-files", type=int, default=1,
                    help="bench: N large files, big.bin and big-2.bin ... big-N.bin")
    ap.add_argument("--parallel-size", type=int,
                    help="bench: bytes of big-2.bin ... (default: --large-size)")
    ap.add_argument("--small-files", type=int, default=1000,
                    help="bench: files of 64 KiB in small64k/ (default 1000)")
    ap.add_argument("--force", action="store_true", help="write into a non-empty directory")
    a = ap.parse_args(argv)
    try:
        generate(a.out, a.profile, a.seed, a.large_size, a.many, a.force, a.parallel_files,
                 a.small_files, a.parallel_size)
    except (OSError, ValueError) as e:
        print(f"dataset.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
