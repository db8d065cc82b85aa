#!/usr/bin/env python3
"""Bad input from the service, against real mounts: items no file system
could show are skipped with a log line, pages of the wrong shape or that
never end fail the listing with EIO in bounded time, and a delta feed that
misbehaves leaves the cached tree served and recovers. The daemon never
crashes and never loops."""

import errno
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import MountCase, read_or_none, wait_until  # noqa: E402

MiB = 1 << 20


class BadListings(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(1 * MiB)]

    def expected(self, rel):
        return sorted(os.listdir(os.path.join(self.emu["dataset_dir"], rel)))

    def listdir(self, m, rel):
        return sorted(os.listdir(os.path.join(m.mountpoint, rel)))

    def test_invalid_items_are_skipped_and_the_rest_listed(self):
        m = self.mount(cache="cache-items", opts="poll_interval=0")
        self.emu.fault(route="children", kind="hostile", what="names", count=1)
        self.assertEqual(self.listdir(m, "names"), self.expected("names"))
        self.emu.fault(route="children", kind="hostile", what="fields", count=1)
        self.assertEqual(self.listdir(m, "finance"), sorted(self.expected("finance") + ["huge.csv"]))
        log = m.read_log()
        self.assertIn("list folder: skipped 7 item(s) with invalid fields or names", log)
        self.assertIn("list folder: skipped 14 item(s) with invalid fields or names", log)
        # The one well-formed stranger: listed as the service says, and
        # opening it fails cleanly (no chunk table for 8 EiB) instead of crashing.
        huge = os.path.join(m.mountpoint, "finance", "huge.csv")
        self.assertEqual(os.stat(huge).st_size, 2**63 - 1)
        r = subprocess.run(["head", "-c", "16", huge], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("File too large", r.stderr)
        # The real files of both folders read right.
        for rel in ("finance/budget 2026.xlsx", "names/日本語/中身.csv"):
            with open(os.path.join(m.mountpoint, rel), "rb") as a, \
                    open(os.path.join(self.emu["dataset_dir"], rel), "rb") as b:
                self.assertEqual(a.read(), b.read(), rel)
        self.assertIsNone(m.proc.poll())

    def test_broken_pages_fail_the_listing_then_recover(self):
        m = self.mount(cache="cache-pages", opts="poll_interval=0")
        cases = [("hostile", "nextlink_loop", "repeated a nextLink"),
                 ("hostile", "not_object", "malformed page"),
                 ("hostile", "no_value", "malformed page"),
                 ("malformed", None, "malformed page"),
                 ("hostile", "endless", "pages in a row without an item")]
        rel = "deep"
        for kind, what, said in cases:
            rel = os.path.join(rel, f"d{cases.index((kind, what, said)) + 1}")
            parent = os.path.dirname(rel)
            os.listdir(os.path.join(m.mountpoint, parent))  # listed before the fault
            self.emu.reset()
            self.emu.fault(route="children", kind=kind, **({"what": what} if what else {}))
            t0 = time.time()
            try:
                with self.assertRaises(OSError, msg=f"{kind} {what}") as e:
                    os.listdir(os.path.join(m.mountpoint, rel))
            finally:
                self.emu.clear_faults()
            took = time.time() - t0
            self.assertEqual(e.exception.errno, errno.EIO, f"{kind} {what}")
            self.assertLess(took, 30, f"{kind} {what}")
            self.assertIn(said, m.read_log())
            n = len(self.emu.requests("children"))
            # A loop stops at its second page; an endless feed at its budget.
            self.assertLessEqual(n, 2 if what == "nextlink_loop" else 201, f"{kind} {what}")
            # The service mends: the same folder lists, without a remount.
            self.assertEqual(self.listdir(m, rel), self.expected(rel), f"{kind} {what}")
        self.assertIsNone(m.proc.poll())


class BadDelta(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(1 * MiB)]

    def test_delta_with_invalid_items_loops_and_endless_pages(self):
        m = self.mount(cache="cache-delta", opts="poll_interval=1")
        root = m.mountpoint
        with open(os.path.join(root, "reports", "2026", "q1.csv"), "rb") as f:
            cached = f.read()
        os.listdir(os.path.join(root, "reports"))

        # Invalid items in a round: skipped, the valid change applied.
        self.emu.fault(route="delta", kind="hostile", what="names", count=1)
        self.emu.mutate("create", "reports/after-names.csv", text="a,b\n1,2\n")
        self.assertTrue(wait_until(
            lambda: os.path.exists(os.path.join(root, "reports", "after-names.csv")), 20))
        self.assertTrue(wait_until(lambda: "delta: skipped 7 item(s)" in m.read_log(), 10))
        self.assertFalse(any("/" in n or n in (".", "..") for n in os.listdir(root)))

        # A feed that never ends, then one that links to itself: each round
        # gives up in bounded time, the cached tree and bytes stay served.
        # Said once per streak, however many rounds fail the same way.
        for what, said, per_round in (("endless", "pages in a row without an item", 200),
                                      ("nextlink_loop", "repeated a nextLink", 2)):
            self.emu.fault(route="delta", kind="hostile", what=what)
            try:
                self.emu.mutate("modify", "reports/2026/q3.csv", text=f"after {what}\n")
                self.assertTrue(wait_until(lambda: said in m.read_log(), 30), what)
                seen = len(self.emu.requests("delta"))
                self.assertTrue(wait_until(
                    lambda: len(self.emu.requests("delta")) >= seen + 2 * per_round, 30), what)
                said_lines = [ln for ln in m.read_log().splitlines() if said in ln]
                self.assertEqual(len(said_lines), 1, said_lines)
                with open(os.path.join(root, "reports", "2026", "q1.csv"), "rb") as f:
                    self.assertEqual(f.read(), cached)
                self.assertIn("q2.csv", os.listdir(os.path.join(root, "reports", "2026")))
            finally:
                self.emu.clear_faults()
            # Mended: the change the bad rounds could not deliver arrives.
            self.assertTrue(wait_until(lambda: read_or_none(os.path.join(
                root, "reports", "2026", "q3.csv")) == f"after {what}\n".encode(), 30), what)
        self.assertIn("delta: recovered", m.read_log())
        self.assertIsNone(m.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
