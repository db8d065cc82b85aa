#!/usr/bin/env python3
"""The daemon under valgrind memcheck through one integration scenario: a
cp -r of the whole test library (chunked large file, folder prefetch, many
small files), a download URL expiring mid-read, a remote modify seen by the
change poll, a metrics scrape and a clean unmount. Passes only with no
invalid access, no uninitialised use and no definite or indirect leak.

Skipped in sanitizer builds (valgrind cannot run ASan binaries) and where
valgrind is missing (scripts/install-deps installs it)."""

import filecmp
import os
import re
import shutil
import socket
import subprocess
import sys
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import SPFS, MountCase, read_or_none, wait_until  # noqa: E402


def sanitized(binary):
    """Built with ASan/UBSan: linked to their runtimes (gcc) or carrying
    them (clang's static runtime)."""
    libs = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    if "libasan" in libs or "libubsan" in libs:
        return True
    with open(binary, "rb") as f:
        return b"AddressSanitizer" in f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
@unittest.skipIf(sanitized(SPFS), "a sanitizer build: valgrind cannot run it")
class Memcheck(MountCase):
    start_args = ["--profile", "test", "--many", "30", "--large-size", str(5 << 20)]

    def test_scenario_is_clean_under_memcheck(self):
        vlog = os.path.join(self.tmp, "valgrind.log")
        wrap = ["valgrind", "--tool=memcheck", "--leak-check=full",
                "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=99", "--track-origins=yes", "--num-callers=30",
                f"--log-file={vlog}"]
        port = free_port()
        m = self.mount(cache="cache-vg", wrap=wrap,
                       opts=f"chunk_size=1M,poll_interval=1,metrics=127.0.0.1:{port}")
        dst = os.path.join(self.tmp, "copy")
        # Download URLs die while the copy runs: the reader fetches new ones.
        self.emu.call("POST", "download-urls", {"lifetime": 3})
        r = subprocess.run(["cp", "-r", m.mountpoint + "/.", dst], capture_output=True,
                           text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        cmp = filecmp.dircmp(self.emu["dataset_dir"], dst)
        self.assertEqual(different(cmp), [], "copy differs")
        self.emu.mutate("modify", "reports/2026/q1.csv", text="changed,1\n")
        path = os.path.join(m.mountpoint, "reports", "2026", "q1.csv")
        self.assertTrue(wait_until(lambda: read_or_none(path) == b"changed,1\n", 60))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            self.assertIn(b"spfs_", resp.read())
        code = m.stop()
        with open(vlog, encoding="utf-8", errors="replace") as f:
            report = f.read()
        summary = re.findall(r"ERROR SUMMARY: (\d+) errors", report)
        self.assertTrue(summary, report[-3000:])
        self.assertEqual(summary[-1], "0", report[-6000:])
        for kind in ("definitely", "indirectly"):
            lost = re.findall(rf"{kind} lost: ([\d,]+) bytes", report)
            self.assertTrue(all(x == "0" for x in lost), f"{kind} lost: {lost}\n{report[-6000:]}")
        self.assertEqual(code, 0, report[-3000:])
        print("memcheck: " + " ".join(re.findall(r"(?:in use at exit|total heap usage): [^\n]*",
                                                   report)), file=sys.stderr)


def different(cmp):
    out = cmp.diff_files + cmp.left_only + cmp.right_only + cmp.funny_files
    # dircmp compares shallowly (size, mtime): compare the bytes too.
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    out += mismatch + errors
    for sub in cmp.subdirs.values():
        out += different(sub)
    return out


if __name__ == "__main__":
    if not shutil.which("valgrind") or sanitized(SPFS):
        print("skipped: no valgrind, or a sanitizer build", file=sys.stderr)
        sys.exit(77)  # automake's SKIP
    unittest.main(verbosity=2)
