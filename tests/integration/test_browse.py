#!/usr/bin/env python3
"""Browsing a library through a real FUSE mount: the tree as SharePoint has
it, the request counts, change tracking by delta, throttling, remounts,
offline mounts, xattrs, read-only semantics and SOURCE forms."""

import errno
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

from mount_helpers import SPFS, Mount, MountCase, tree, wait_until, webhook_env  # noqa: E402


class Browse(MountCase):
    start_args = ["--profile", "test", "--many", "5000", "--large-size", str(1 << 20)]

    def test_tree_equals_dataset_and_request_counts(self):
        m = self.mount(cache="cache-tree", opts="poll_interval=30")
        self.assertIn("many", os.listdir(m.mountpoint))  # the root's own listing
        self.emu.reset()
        # Cold ls -l of 5,000 entries: exactly ceil(5000/1000) listings.
        names = os.listdir(os.path.join(m.mountpoint, "many"))
        for n in names:
            os.stat(os.path.join(m.mountpoint, "many", n))
        c = self.emu.counters()
        self.assertEqual(len(names), 5000)
        self.assertEqual(c.get("children"), 5, c)
        self.assertNotIn("item", c)
        self.assertNotIn("item_by_path", c)
        # Warm: repeating the listing and the stats makes no request.
        self.emu.reset()
        os.listdir(os.path.join(m.mountpoint, "many"))
        for n in names[:500]:
            os.stat(os.path.join(m.mountpoint, "many", n))
        self.assertEqual({k: v for k, v in self.emu.counters().items() if k != "delta"}, {})

        want = tree(self.emu["dataset_dir"])
        got = tree(m.mountpoint)
        self.assertEqual(set(got), set(want))
        for path, rec in want.items():
            self.assertEqual(got[path], rec, path)
        deep = os.path.join(m.mountpoint, "deep", *[f"d{i}" for i in range(1, 11)], "leaf.csv")
        self.assertTrue(os.path.isfile(deep))
        st = os.stat(os.path.join(m.mountpoint, "empty.csv"))
        self.assertEqual(st.st_size, 0)
        self.assertEqual(st.st_mode & 0o777, 0o444)
        self.assertEqual(os.stat(os.path.join(m.mountpoint, "names")).st_mode & 0o777, 0o555)

    def test_xattrs_and_read_only(self):
        m = self.mount(cache="cache-x")
        p = os.path.join(m.mountpoint, "names", "Q3 #1.csv")
        item = self.graph(f"/drives/{self.emu['drive_id']}/root:/names/Q3%20%231.csv").json()
        self.assertEqual(os.getxattr(p, "user.sharepoint.id").decode(), item["id"])
        self.assertEqual(os.getxattr(p, "user.sharepoint.etag").decode(), item["eTag"])
        self.assertEqual(os.getxattr(p, "user.sharepoint.ctag").decode(), item["cTag"])
        self.assertEqual(os.getxattr(p, "user.sharepoint.quickxorhash").decode(),
                         item["file"]["hashes"]["quickXorHash"])
        self.assertEqual(os.getxattr(p, "user.sharepoint.weburl").decode(), item["webUrl"])
        self.assertEqual(os.getxattr(p, "user.sharepoint.modified_by").decode(), "Megan Bowen")
        self.assertIn("user.sharepoint.id", os.listxattr(p))
        with self.assertRaises(OSError) as e:
            os.getxattr(p, "user.nothing")
        self.assertEqual(e.exception.errno, errno.ENODATA)
        for action in (lambda: open(p, "w"), lambda: open(p, "a"),
                       lambda: os.mkdir(os.path.join(m.mountpoint, "new")),
                       lambda: os.unlink(p), lambda: os.rename(p, p + ".x"),
                       lambda: os.chmod(p, 0o600),
                       lambda: os.setxattr(p, "user.x", b"1"),
                       lambda: open(os.path.join(m.mountpoint, "new.csv"), "w")):
            with self.assertRaises(OSError) as e:
                action()
            self.assertEqual(e.exception.errno, errno.EROFS)
        with open(p, "rb") as f:
            with open(os.path.join(self.emu["dataset_dir"], "names", "Q3 #1.csv"), "rb") as want:
                self.assertEqual(f.read(), want.read())
        st = os.statvfs(m.mountpoint)
        self.assertGreater(st.f_blocks, 0)

    def test_throttling_honoured(self):
        m = self.mount(cache="cache-throttle", opts="poll_interval=0")
        self.emu.reset()
        self.emu.fault(route="children", kind="throttle", count=1, retry_after=2)
        t0 = time.time()
        names = os.listdir(os.path.join(m.mountpoint, "many"))
        self.assertEqual(len(names), 5000)
        self.assertGreaterEqual(time.time() - t0, 2)
        log = self.emu.requests()
        throttled = [e for e in log if e["status"] == 429]
        self.assertEqual(len(throttled), 1)
        until = throttled[0]["end"] + throttled[0]["retry_after"]
        graph_after = [e for e in log if e["listener"] == "graph" and e["t"] > throttled[0]["end"]]
        self.assertTrue(graph_after)
        for e in graph_after:
            self.assertGreaterEqual(e["t"], until - 0.05, e)

    def test_mount_helper_and_ownership(self):
        # What mount -t fuse.spfs (and an fstab line) runs: libfuse's
        # helper, which execs spfs with the options mount(8) passes.
        helper = shutil.which("mount.fuse3") or "/sbin/mount.fuse3"
        mp = os.path.join(self.tmp, "mnt-helper")
        os.makedirs(mp, exist_ok=True)
        env = webhook_env(self.emu)
        env["PATH"] = os.path.dirname(SPFS) + os.pathsep + env.get("PATH", "")
        opts = (f"rw,nosuid,nodev,graph_url={self.emu['graph_url']},cafile={self.ca},"
                f"cache_dir={os.path.join(self.tmp, 'cache-helper')},poll_interval=0,"
                "uid=1234,gid=2345,umask=027")
        r = subprocess.run([helper, self.emu["site_url"], mp, "-t", "fuse.spfs", "-o", opts],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            self.assertTrue(wait_until(lambda: os.path.ismount(mp), 10))
            with open("/proc/mounts", encoding="utf-8") as f:
                line = [l for l in f if f" {mp} " in l][0]
            self.assertIn("fuse.spfs", line)
            self.assertIn(" ro,", line)
            st = os.stat(os.path.join(mp, "empty.csv"))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (1234, 2345, 0o440))
            self.assertEqual(os.stat(os.path.join(mp, "names")).st_mode & 0o777, 0o550)
        finally:
            subprocess.run(["fusermount3", "-u", mp], check=False)

    def test_remount_inodes_and_offline(self):
        m = self.mount(name="mnt-r", cache="cache-r", opts="poll_interval=0")
        first = tree(m.mountpoint, with_ino=True)
        m.stop()
        m = self.mount(name="mnt-r", cache="cache-r", opts="poll_interval=0")
        self.assertEqual(tree(m.mountpoint, with_ino=True), first)
        m.stop()
        # Graph unreachable at start: the cache still mounts and lists.
        self.emu.fault(route="*", kind="status", status=503, rate=1.0)
        self.emu.fault(route="token", kind="status", status=503, rate=1.0)
        try:
            m = self.mount(name="mnt-r", cache="cache-r", opts="poll_interval=0")
            self.assertEqual(tree(m.mountpoint, with_ino=True), first)
            self.assertIn("cache", m.read_log())
        finally:
            self.emu.clear_faults()

    def test_source_forms(self):
        forms = {
            "https://contoso.sharepoint.com/sites/Finance/Documents": "reports",
            "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents": "reports",
            "https://contoso.sharepoint.com/sites/Finance/Shared Documents/reports/2026": "q1.csv",
            "https://contoso.sharepoint.com/sites/finance/shared documents/Forms/AllItems.aspx": "reports",
            "https://contoso.sharepoint.com/sites/Finance/Reports%20Archive": "2019",
            f"drive:{self.emu['drive_id']}:/names": "Q3 #1.csv",
            f"drive:{self.emu['drive_id']}": "reports",
        }
        for i, (source, expect) in enumerate(forms.items()):
            m = self.mount(name=f"mnt-s{i}", cache="cache-s", source=source, opts="poll_interval=0")
            self.assertIn(expect, os.listdir(m.mountpoint), source)
            m.stop()
        for source in ("https://contoso.sharepoint.com/teams/Ops", "https://contoso.sharepoint.com"):
            m = self.mount(name="mnt-t", cache="cache-s", source=source, opts="poll_interval=0")
            self.assertEqual(os.listdir(m.mountpoint), [])
            m.stop()

    def check(self, *args, opts=""):
        o = f"graph_url={self.emu['graph_url']},cafile={self.ca}" + ("," + opts if opts else "")
        return subprocess.run([SPFS, "--check", *args, "-o", o], env=webhook_env(self.emu),
                              capture_output=True, text=True, timeout=60)

    def test_check_source_and_errors(self):
        r = self.check(self.emu["site_url"] + "/Shared%20Documents/reports")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for s in ("site: https://contoso.sharepoint.com/sites/Finance", self.emu["site_id"],
                  "library: Documents", self.emu["drive_id"], "folder: reports",
                  "root listing:", "entries", "result: ok"):
            self.assertIn(s, r.stdout)
        r = self.check(self.emu["site_url"] + "/Nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("library 'Nope' not found", r.stdout)
        self.assertIn('"Documents" (URL name "Shared Documents")', r.stdout)
        self.assertIn('"Reports Archive"', r.stdout)
        r = self.check("https://contoso.sharepoint.com/sites/Nowhere")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not found", r.stdout)
        self.emu.fault(route="site", kind="status", status=403, count=1)
        r = self.check(self.emu["site_url"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Sites.Selected", r.stdout)
        # Mounting an unknown library fails with the same message.
        mp = os.path.join(self.tmp, "mnt-bad")
        os.makedirs(mp, exist_ok=True)
        r = subprocess.run([SPFS, "-f", self.emu["site_url"] + "/Nope", mp, "-o",
                            f"graph_url={self.emu['graph_url']},cafile={self.ca},"
                            f"cache_dir={os.path.join(self.tmp, 'cache-bad')}"],
                           env=webhook_env(self.emu), capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("library 'Nope' not found", r.stderr)
        self.assertFalse(os.path.ismount(mp))

    def test_cache_files_private(self):
        cache = os.path.join(self.tmp, "cache-perm")
        m = self.mount(cache="cache-perm")
        os.listdir(m.mountpoint)
        self.assertEqual(os.stat(cache).st_mode & 0o777, 0o700)
        dbs = sorted(f.split(".", 1)[1] for f in os.listdir(cache) if f.endswith(".db"))
        self.assertEqual(dbs, ["content.db", "meta.db"])  # one library, two stores
        for f in os.listdir(cache):
            self.assertEqual(os.stat(os.path.join(cache, f)).st_mode & 0o077, 0, f)


class Changes(MountCase):
    """Mutates its own emulator's library, so it runs apart from Browse."""

    def test_changes_through_delta(self):
        m = self.mount(cache="cache-delta", opts="poll_interval=1,attr_timeout=3600,entry_timeout=3600")
        mp = m.mountpoint
        # Cache names and sizes in the kernel first (long timeouts).
        self.assertIn("q1.csv", os.listdir(os.path.join(mp, "reports", "2026")))
        size_before = os.stat(os.path.join(mp, "tiny.csv")).st_size
        self.assertFalse(os.path.exists(os.path.join(mp, "reports", "new.csv")))
        os.listdir(os.path.join(mp, "finance"))
        time.sleep(1.5)  # let the first delta round take its token
        self.emu.reset()
        self.emu.mutate("create", "reports/new.csv", text="a,b\n1,2\n")
        self.emu.mutate("modify", "tiny.csv", text="now thirty bytes long, exactly\n")
        self.emu.mutate("rename", "reports/summary.xlsx", new_name="summary 2026.xlsx")
        self.emu.mutate("move", "reports/big-export.csv", new_parent="finance")
        self.emu.mutate("delete", "README.txt")
        ok = wait_until(lambda: os.path.exists(os.path.join(mp, "reports", "new.csv"))
                        and os.stat(os.path.join(mp, "tiny.csv")).st_size == 31
                        and not os.path.exists(os.path.join(mp, "README.txt"))
                        and os.path.exists(os.path.join(mp, "finance", "big-export.csv")), 5)
        self.assertTrue(ok, m.read_log())
        self.assertNotEqual(size_before, 31)
        listing = os.listdir(os.path.join(mp, "reports"))
        self.assertIn("summary 2026.xlsx", listing)
        self.assertNotIn("summary.xlsx", listing)
        self.assertNotIn("big-export.csv", listing)
        # Found through delta, not by listing folders again.
        c = self.emu.counters()
        self.assertGreater(c.get("delta", 0), 0)
        self.assertNotIn("children", c)

        # 410: the tree recovers and keeps serving meanwhile.
        self.emu.call("POST", "invalidate-delta", {})
        time.sleep(2.5)
        self.emu.mutate("create", "reports/after-resync.csv", text="x\n")
        self.assertTrue(wait_until(lambda: os.path.exists(
            os.path.join(mp, "reports", "after-resync.csv")), 8), m.read_log())
        self.assertIn("resync", m.read_log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
