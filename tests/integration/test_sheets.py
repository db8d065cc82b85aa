#!/usr/bin/env python3
"""-o sheets through a real mount: every workbook's NAME.sheets/ folder,
each CSV compared cell by cell with what openpyxl (or xlrd) reads from the
workbook, parsed by Python's csv module and used by cat, cp, wc -l and
sort; the CSVs kept across remounts and replaced when the workbook
changes; hostile workbooks answered with EIO and one log line; and a
1,000,000-row sheet converted in bounded memory."""

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

# The workbooks are made and read with Debian's python3-* modules, which
# only Debian's interpreter sees (the harness's $PYTHON may be another).
try:
    import openpyxl  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import openpyxl  # noqa: E402,F811
import xlrd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import sheets_data  # noqa: E402
from mount_helpers import MountCase, wait_until  # noqa: E402

MiB = 1 << 20


class SheetsCase(MountCase):
    """An emulator serving a dataset made by make_dataset(root)."""

    @classmethod
    def make_dataset(cls, root):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.ds = tempfile.mkdtemp(prefix="spfs-sheets-ds-")
        try:
            cls.facts = cls.make_dataset(os.path.join(cls.ds, "lib"))
            cls.start_args = ["--dataset", os.path.join(cls.ds, "lib")]
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.ds, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.ds, ignore_errors=True)

    def dataset(self, rel):
        return os.path.join(self.emu["dataset_dir"], rel)

    def sheets_mount(self, cache="cache", opts="", **kw):
        return self.mount(cache=cache, opts="sheets" + ("," + opts if opts else ""), **kw)


class Workbooks(SheetsCase):
    @classmethod
    def make_dataset(cls, root):
        return sheets_data.build(root)

    def test_folders_and_every_cell(self):
        m = self.sheets_mount(cache="cache-cells")
        books = os.path.join(m.mountpoint, "books")
        names = sorted(os.listdir(books))
        # Beside each workbook (any case of .xlsx, .xlsm, .xls), its folder;
        # nothing beside other files; the workbooks themselves untouched.
        self.assertEqual(names, sorted([
            "Formulas.xlsx", "Formulas.xlsx.sheets", "Legacy.xls", "Legacy.xls.sheets",
            "Mac 1904.XLSM", "Mac 1904.XLSM.sheets", "Names.xlsx", "Names.xlsx.sheets",
            "Types.xlsx", "Types.xlsx.sheets", "notes.csv"]))
        for wb in ("Types.xlsx", "Formulas.xlsx", "Legacy.xls"):
            with open(os.path.join(books, wb), "rb") as got, open(self.dataset("books/" + wb), "rb") as want:
                self.assertEqual(got.read(), want.read())
        self.assertTrue(os.path.isdir(os.path.join(books, "Types.xlsx.sheets")))
        with self.assertRaises(FileNotFoundError):
            os.stat(os.path.join(books, "notes.csv.sheets"))

        checked = 0
        for wb in ("Types.xlsx", "Mac 1904.XLSM", "Formulas.xlsx"):
            book = openpyxl.load_workbook(self.dataset("books/" + wb), data_only=True)
            folder = os.path.join(books, wb + ".sheets")
            # One CSV per worksheet, in workbook order, hidden ones too.
            self.assertEqual(os.listdir(folder), [ws.title + ".csv" for ws in book.worksheets])
            for ws in book.worksheets:
                path = os.path.join(folder, ws.title + ".csv")
                with open(path, "rb") as f:
                    data = f.read()
                # ls -l shows exact sizes
                self.assertEqual(os.stat(path).st_size, len(data), path)
                checked += sheets_data.compare_openpyxl(path, ws, f"{wb}/{ws.title}")
        self.assertGreater(checked, 150)

        book = xlrd.open_workbook(self.dataset("books/Legacy.xls"))
        folder = os.path.join(books, "Legacy.xls.sheets")
        self.assertEqual(os.listdir(folder), [s.name + ".csv" for s in book.sheets()])
        cells = sum(sheets_data.compare_xlrd(os.path.join(folder, s.name + ".csv"), s,
                                             book.datemode, f"Legacy.xls/{s.name}")
                    for s in book.sheets())
        self.assertGreater(cells, 50)

    def test_values_as_documented(self):
        m = self.sheets_mount(cache="cache-values")
        folder = os.path.join(m.mountpoint, "books", "Formulas.xlsx.sheets")
        with open(os.path.join(folder, "Formulas.csv"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        # Cached formula values, errors, booleans, durations, times, dates
        # from a custom format, Office's _xHHHH_ escapes decoded.
        self.assertEqual(lines[0], "n,s,b,e,dur,hhmm,day")
        self.assertEqual(lines[1], "42,ab,TRUE,#DIV/0!,36:00:00,18:00:00,2024-02-29")
        self.assertEqual(lines[2], "43,,,,,,")
        self.assertEqual(lines[3], "under_x0041_score,,,,,,")
        self.assertEqual(lines[4], ",,,3.25,,,")
        with open(os.path.join(m.mountpoint, "books", "Types.xlsx.sheets", "Types.csv")) as f:
            types = f.read().split("\n")
        # Excel's 1900 quirk and the last day; shortest round-trip numbers
        self.assertIn("1900-01-01,,,,,,,,,,,", types)
        self.assertIn("9999-12-31,,,,,,,,,,,", types)
        # (openpyxl writes 0.1 + 0.2 with 16 digits: the file holds 0.3)
        self.assertIn(",0.3,0,1e+21,1e-7,9007199254740992,1234567890000000,,,,,", types)
        # Names that are no file names: made safe and unique.
        self.assertEqual(os.listdir(os.path.join(m.mountpoint, "books", "Names.xlsx.sheets")),
                         ["a_b.csv", "a_b (2).csv", "Sheet3.csv"])

    def test_unix_tools_through_the_mount(self):
        m = self.sheets_mount(cache="cache-tools")
        path = os.path.join(m.mountpoint, "books", "Types.xlsx.sheets", "Types.csv")
        cat = subprocess.run(["cat", path], capture_output=True, check=True).stdout
        dst = os.path.join(self.tmp, "copied.csv")
        subprocess.run(["cp", path, dst], check=True)
        with open(dst, "rb") as f:
            self.assertEqual(f.read(), cat)
        wc = subprocess.run(["wc", "-l", path], capture_output=True, text=True, check=True)
        self.assertEqual(int(wc.stdout.split()[0]), cat.count(b"\n"))
        rows = subprocess.run(
            [sys.executable, "-c", "import csv,sys; print(len(list(csv.reader(open(sys.argv[1], "
             "newline='', encoding='utf-8')))))", path], capture_output=True, text=True, check=True)
        self.assertEqual(int(rows.stdout), len(sheets_data.read_csv(dst)))
        out = subprocess.run(["sort", path], capture_output=True, check=True,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        self.assertEqual(out, b"".join(sorted(cat.splitlines(keepends=True))))

    def test_kept_across_remounts(self):
        m = self.sheets_mount(cache="cache-remount")
        folder = os.path.join(m.mountpoint, "books", "Types.xlsx.sheets")
        before = {n: read_bytes(os.path.join(folder, n)) for n in os.listdir(folder)}
        m.stop()
        self.emu.reset()
        m = self.sheets_mount(cache="cache-remount")
        folder = os.path.join(m.mountpoint, "books", "Types.xlsx.sheets")
        after = {n: read_bytes(os.path.join(folder, n)) for n in os.listdir(folder)}
        self.assertEqual(after, before)
        # Served from the content store: the workbook was not fetched again.
        c = self.emu.counters()
        self.assertNotIn("download", c, c)
        self.assertNotIn("content", c, c)

    def test_off_by_default(self):
        m = self.mount(cache="cache-off")
        self.assertNotIn("Types.xlsx.sheets", os.listdir(os.path.join(m.mountpoint, "books")))
        with self.assertRaises(FileNotFoundError):
            os.stat(os.path.join(m.mountpoint, "books", "Types.xlsx.sheets"))

    def test_hostile_workbooks_give_eio_and_one_line(self):
        m = self.sheets_mount(cache="cache-hostile")
        hostile = os.path.join(m.mountpoint, "hostile")
        for name, why in sorted(self.facts.items()):
            with self.subTest(name=name):
                folder = os.path.join(hostile, name + ".sheets")
                started = time.time()
                for _ in range(2):  # asked twice, said once
                    self.assertEqual(eio_of(folder), errno.EIO, name)
                self.assertLess(time.time() - started, 120, "no hang")
                lines = [ln for ln in m.read_log().splitlines() if f"'{name}'" in ln]
                self.assertEqual(len(lines), 1, lines)
                self.assertIn(why, lines[0])
        # The mount is still fine.
        self.assertIn("Types.xlsx.sheets", os.listdir(os.path.join(m.mountpoint, "books")))
        self.assertIsNone(m.proc.poll())

    def test_a_changed_workbook_replaces_its_folder(self):
        m = self.sheets_mount(cache="cache-delta", opts="poll_interval=1")
        books = os.path.join(m.mountpoint, "books")
        folder = os.path.join(books, "Delta.xlsx.sheets")
        self.assertIsNone(safe_listdir(folder))
        # A new workbook gets its folder (a cached negative entry too).
        self.emu.mutate("create", "books/Delta.xlsx", content_b64=book_b64("First", ["old", 1]))
        self.assertTrue(wait_until(lambda: safe_listdir(folder) == ["First.csv"], 30),
                        safe_listdir(folder))
        self.assertEqual(read_bytes(os.path.join(folder, "First.csv")), b"old,1\n")
        # A new version: new sheets, new bytes.
        self.emu.mutate("modify", "books/Delta.xlsx", content_b64=book_b64("Second", ["new", 22]))
        self.assertTrue(wait_until(lambda: safe_listdir(folder) == ["Second.csv"], 30),
                        safe_listdir(folder))
        self.assertEqual(read_bytes(os.path.join(folder, "Second.csv")), b"new,22\n")
        with self.assertRaises(FileNotFoundError):
            os.stat(os.path.join(folder, "First.csv"))
        # Deleted: the folder goes with it.
        self.emu.mutate("delete", "books/Delta.xlsx")
        self.assertTrue(wait_until(lambda: not os.path.exists(folder), 30))


def book_b64(title, row):
    import base64
    import io
    wb = openpyxl.Workbook()
    wb.active.title = title
    wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return base64.b64encode(out.getvalue()).decode()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def eio_of(folder):
    """The errno of listing folder and reading each of its files."""
    try:
        for n in os.listdir(folder):
            with open(os.path.join(folder, n), "rb") as f:
                f.read()
    except OSError as e:
        return e.errno
    return 0


def safe_listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return None


class MillionRows(SheetsCase):
    rows = int(os.environ.get("SPFS_SHEETS_ROWS", "1000000"))

    @classmethod
    def make_dataset(cls, root):
        os.makedirs(root)
        sheets_data.million_rows(os.path.join(root, "million.xlsx"), cls.rows)
        return {}

    def test_a_million_rows_in_bounded_memory(self):
        m = self.sheets_mount(cache="cache-million")
        path = os.path.join(m.mountpoint, "million.xlsx.sheets", "Big.csv")
        size = os.stat(path).st_size  # converts the workbook
        lines = 0
        with open(path, encoding="utf-8") as f:
            for r, line in enumerate(f):
                if line != sheets_data.million_rows_csv_line(r):
                    self.fail(f"line {r + 1}: {line!r}")
                lines += 1
        self.assertEqual(lines, self.rows)
        self.assertEqual(size, sum(len(sheets_data.million_rows_csv_line(r))
                                   for r in range(self.rows)))
        with open(f"/proc/{m.proc.pid}/maps") as maps:
            sanitized = "libasan" in maps.read()
        with open(f"/proc/{m.proc.pid}/status") as st:
            peak = next(int(ln.split()[1]) * 1024 for ln in st if ln.startswith("VmHWM:"))
        print(f"peak RSS converting {self.rows} rows ({size / MiB:.1f} MiB of CSV): "
              f"{peak / MiB:.1f} MiB", file=sys.stderr)
        if sanitized:
            self.skipTest("AddressSanitizer's shadow and quarantine dwarf the RSS")
        self.assertLess(peak, 64 * MiB, f"peak RSS {peak >> 20} MiB")


if __name__ == "__main__":
    unittest.main(verbosity=2)
