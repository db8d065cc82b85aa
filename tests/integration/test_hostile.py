#!/usr/bin/env python3
"""A hostile service, against real mounts: every answer below is one no
honest Graph or Entra sends, served by the emulator's hostile faults, and
each test checks what spfs does with it instead of what it used to do.

- The bearer token goes to Graph's origin only: a nextLink or deltaLink on
  another origin ends the walk like a bad page, and a stored deltaLink on
  another origin is dropped (full resync); no request reaches that origin.
- A parent chain that loops (in a listing, in delta, or planted in the
  store) is refused or ends; stat answers and SIGTERM still stops spfs.
- Pages huge in bytes or in parse memory, and endless chains of full
  pages, fail their listing (a delta round starts over) while peak RSS
  stays under the pod's 256 MiB, and other folders list meanwhile.
- Token answers with a null token_type or a lifetime of 2^63-1 neither
  crash nor loop; IMDS never goes through a proxy.
- Names: a child claiming to be the root is skipped, duplicates show once
  (the newest), control characters reach the log escaped.
- Deadlines: a body trickling at 2 bytes/s and a download host's
  Retry-After of an hour are bounded by read_timeout and a cap; Graph is
  not paused by the download host.
- The cache directory, mount options and the process itself: no symlinks
  followed, modes enforced, SOURCE escaped, no core dumps.
"""

import errno
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import SPFS, MountCase, read_or_none, tree, wait_until, webhook_env  # noqa: E402

MiB = 1 << 20
POD_LIMIT = 256 * MiB


def sanitized(pid):
    """ASan's shadow memory and quarantine dwarf RSS: no RSS bound then."""
    with open(f"/proc/{pid}/maps") as maps:
        return "libasan" in maps.read()


def peak_rss(pid):
    """VmHWM: the process's peak resident set so far, in bytes."""
    with open(f"/proc/{pid}/status") as st:
        for line in st:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def meta_db(cache):
    return next(os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(".meta.db"))


def within(cmd, seconds):
    """cmd in a child process, so that a hung mount cannot hang the test:
    (return code, stdout), or (None, b"") when it did not finish in time."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=seconds)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        return None, b""


def stat_within(path, seconds):
    return within(["stat", path], seconds)[0]


class HostileCase(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(1 * MiB)]

    def mutate(self, op, path, **kw):
        """A change to the library, undone after the test (the emulator
        is shared by the class; the dataset on disk is the truth)."""
        self.emu.mutate(op, path, **kw)
        if op in ("create", "mkdir"):
            self.addCleanup(self.emu.mutate, "delete", path)

    def listdir(self, m, rel=""):
        return sorted(os.listdir(os.path.join(m.mountpoint, rel)))

    def expected(self, rel=""):
        return sorted(os.listdir(os.path.join(self.emu["dataset_dir"], rel)))

    def assert_or_kill(self, m, ok, msg):
        """A daemon that hangs would hang the clean-up too (it stats the
        mount point): it is killed before the failure is reported."""
        if not ok:
            m.proc.kill()
        self.assertTrue(ok, msg)

    def assert_no_token_elsewhere(self):
        """No request carried a bearer token to a listener other than
        Graph's, and none reached the download host's /v1.0 paths."""
        for e in self.emu.requests():
            if e["listener"] != "graph":
                self.assertFalse(e.get("authorization"), e)
                self.assertFalse(e["path"].startswith("/v1.0"), e)


class TokenOnlyToGraph(HostileCase):
    def test_links_to_another_origin_are_refused(self):
        m = self.mount(cache="cache-links", opts="poll_interval=0")
        self.emu.reset()
        self.emu.fault(route="children", kind="hostile", what="foreign_link", folder="reports")
        try:
            with self.assertRaises(OSError) as e:
                os.listdir(os.path.join(m.mountpoint, "reports"))
            self.assertEqual(e.exception.errno, errno.EIO)
        finally:
            self.emu.clear_faults()
        self.assertIn("to another origin", m.read_log())
        self.assert_no_token_elsewhere()
        # The service mends: the same folder lists.
        self.assertEqual(self.listdir(m, "reports"), self.expected("reports"))

    def test_delta_links_to_another_origin_are_not_followed(self):
        m = self.mount(cache="cache-delta-links", opts="poll_interval=1")
        os.listdir(os.path.join(m.mountpoint, "reports"))
        self.emu.reset()
        self.emu.fault(route="delta", kind="hostile", what="foreign_link")
        try:
            self.mutate("create", "reports/while-foreign.csv", text="x\n")
            self.assertTrue(wait_until(lambda: "sent a deltaLink to another origin"
                                       in m.read_log(), 30))
            self.assertTrue(wait_until(lambda: len(self.emu.requests("delta")) >= 3, 30))
        finally:
            self.emu.clear_faults()
        self.assert_no_token_elsewhere()
        self.assertTrue(wait_until(lambda: os.path.exists(
            os.path.join(m.mountpoint, "reports", "while-foreign.csv")), 30))

    def test_planted_delta_link_is_discarded(self):
        cache = os.path.join(self.tmp, "cache-planted")
        m = self.mount(cache="cache-planted", opts="poll_interval=1")
        os.listdir(os.path.join(m.mountpoint, "reports"))
        db = meta_db(cache)
        self.assertTrue(wait_until(lambda: "delta_link" in dict(
            sqlite3.connect(db).execute("SELECT key, value FROM info").fetchall()), 20))
        m.stop()
        # Written by hand, as an attacker with the cache's file would.
        foreign = self.emu["python_content_url"] + f"/v1.0/drives/{self.emu['drive_id']}" \
            "/root/delta?token=planted"
        with sqlite3.connect(db) as c:
            c.execute("UPDATE info SET value=? WHERE key='delta_link'", (foreign,))
        self.emu.reset()
        m = self.mount(name="mnt2", cache="cache-planted", opts="poll_interval=1")
        self.assertTrue(wait_until(lambda: "stored deltaLink is not on" in m.read_log(), 20))
        # A full resync: tracking starts over from now, on Graph.
        self.assertTrue(wait_until(lambda: len(self.emu.requests("delta")) >= 1, 20))
        self.assert_no_token_elsewhere()
        self.mutate("create", "reports/after-plant.csv", text="y\n")
        self.assertTrue(wait_until(lambda: os.path.exists(
            os.path.join(m.mountpoint, "reports", "after-plant.csv")), 30))
        stored = dict(sqlite3.connect(db).execute("SELECT key, value FROM info").fetchall())
        self.assertTrue(stored["delta_link"].startswith(self.emu["graph_url"]), stored)


class LoopedTree(HostileCase):
    def test_a_listing_holding_the_folder_or_its_parent(self):
        m = self.mount(cache="cache-loop", opts="poll_interval=0")
        self.emu.fault(route="children", kind="hostile", what="cycle", folder="reports/2026")
        try:
            self.assertEqual(self.listdir(m, "reports/2026"), self.expected("reports/2026"))
        finally:
            self.emu.clear_faults()
        log = m.read_log()
        self.assertIn("'self-loop'", log)
        self.assertIn("'parent-loop'", log)
        self.assertIn("would close a loop", log)
        # The tree is still a tree: a walk ends and finds what is there.
        self.assert_or_kill(m, stat_within(os.path.join(m.mountpoint, "reports"), 30) == 0,
                            "stat hangs")
        self.assert_or_kill(m, within(["find", m.mountpoint], 60)[0] == 0, "find does not end")
        self.assertIn("reports/2026/q1.csv", tree(m.mountpoint))

    def test_delta_moving_a_folder_below_itself(self):
        m = self.mount(cache="cache-loop-delta", opts="poll_interval=1")
        before = tree(m.mountpoint)
        self.emu.fault(route="delta", kind="hostile", what="cycle", count=1)
        self.assert_or_kill(m, wait_until(lambda: "a parent loop" in m.read_log(), 30),
                            "no word of the loop")
        self.assert_or_kill(m, stat_within(m.mountpoint, 30) == 0, "stat hangs")
        self.assertEqual(tree(m.mountpoint), before)
        t0 = time.time()
        m.proc.send_signal(signal.SIGTERM)
        m.proc.wait(30)
        print(f"SIGTERM to exit: {time.time() - t0:.1f} s", file=sys.stderr)

    def test_planted_loop_then_a_delete_through_it(self):
        cache = os.path.join(self.tmp, "cache-planted-loop")
        m = self.mount(cache="cache-planted-loop", opts="poll_interval=1")
        os.listdir(os.path.join(m.mountpoint, "deep", "d1", "d2"))
        m.stop()
        db = meta_db(cache)
        with sqlite3.connect(db) as c:
            (child,) = c.execute("SELECT ino FROM items WHERE name='d2'").fetchone()
            # d1 now hangs below its own child, d2.
            c.execute("UPDATE items SET parent_ino=? WHERE name='d1'", (child,))
        m = self.mount(name="mnt2", cache="cache-planted-loop", opts="poll_interval=1")
        self.emu.mutate("delete", "deep/d1/d2")
        # The delete walks into the loop; it must end, and the mount answer.
        def deleted():
            with sqlite3.connect(db) as c:
                return c.execute("SELECT ino FROM items WHERE name='d2'").fetchone() is None
        self.assert_or_kill(m, wait_until(deleted, 60), "the delete never ended")
        self.assert_or_kill(m, stat_within(m.mountpoint, 30) == 0, "stat hangs")
        self.assert_or_kill(m, stat_within(os.path.join(m.mountpoint, "README.txt"), 30) == 0,
                            "stat hangs")
        m.proc.send_signal(signal.SIGTERM)
        m.proc.wait(30)


class Memory(HostileCase):
    """Each case measures the daemon's peak RSS (VmHWM) and checks it against
    the pod's limit, 256 MiB (not under ASan, which inflates it)."""

    def assert_rss(self, m, case):
        peak = peak_rss(m.proc.pid)
        print(f"peak RSS after {case}: {peak / MiB:.1f} MiB", file=sys.stderr)
        if not sanitized(m.proc.pid):
            self.assertLess(peak, POD_LIMIT, case)

    def test_huge_pages(self):
        m = self.mount(cache="cache-huge", opts="poll_interval=0")
        for rel, mib, said in (("reports", 60, "larger than 8388608 bytes"),
                               ("finance", 7, "beyond any real page")):
            self.emu.fault(route="children", kind="hostile", what="huge_empty", mib=mib,
                           folder=rel)
            try:
                with self.assertRaises(OSError) as e:
                    os.listdir(os.path.join(m.mountpoint, rel))
                self.assertEqual(e.exception.errno, errno.EIO)
            finally:
                self.emu.clear_faults()
            self.assertIn(said, m.read_log())
            self.assert_rss(m, f"a {mib} MiB page of empty objects")
            self.assertEqual(self.listdir(m, rel), self.expected(rel))

    def test_download_claiming_a_huge_total(self):
        """One 206 whose Content-Range says 32 TiB for a small file: the
        claim sizes no memory (the chunk table follows what is read), the
        read gets the real bytes or EIO, and a total past any real file is
        refused."""
        rel = "reports/2026/q3.csv"
        with open(os.path.join(self.emu["dataset_dir"], rel), "rb") as f:
            truth = f.read()
        m = self.mount(cache="cache-claim", opts="poll_interval=0,read_timeout=10")
        for total in ((1 << 45) - 1, 1 << 62):
            self.emu.fault(route="download", kind="hostile", what="claim_total",
                           total=total)
            try:
                with open(os.path.join(m.mountpoint, rel), "rb") as f:
                    got = f.read(len(truth) + 100)
                self.assertEqual(got, truth[:len(got)])
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO)
            finally:
                self.emu.clear_faults()
            self.assert_rss(m, f"a Content-Range total of {total}")
        self.assertIsNone(m.proc.poll())

    def test_endless_full_pages_while_other_folders_list(self):
        m = self.mount(cache="cache-endless", opts="poll_interval=0,read_timeout=120")
        self.emu.fault(route="children", kind="hostile", what="endless_full", folder="many")
        result = {}

        def endless():
            try:
                os.listdir(os.path.join(m.mountpoint, "many"))
                result["err"] = None
            except OSError as e:
                result["err"] = e.errno

        t = threading.Thread(target=endless)
        t.start()
        try:
            # Pages are arriving: the listing is in flight.
            self.assertTrue(wait_until(lambda: len(self.emu.requests("children")) >= 4, 60))
            # Another folder lists meanwhile: no lock held across the
            # network for unrelated folders.
            self.assertEqual(self.listdir(m, "finance"), self.expected("finance"))
            self.assertTrue(t.is_alive(), "the endless listing ended first")
        finally:
            t.join(600)
            self.emu.clear_faults()
        self.assertEqual(result.get("err"), errno.EIO)
        self.assertIn("more than 100000 items", m.read_log())
        self.assert_rss(m, "an endless chain of 1,000-item pages")
        self.assertEqual(self.listdir(m, "many"), self.expected("many"))

    def test_endless_delta_round_starts_over(self):
        m = self.mount(cache="cache-endless-delta", opts="poll_interval=1,read_timeout=120")
        os.listdir(m.mountpoint)
        # 101 pages of 1,000 new files in the root: one past the bound.
        self.emu.fault(route="delta", kind="hostile", what="endless_full", count=101)
        self.assert_or_kill(m, wait_until(lambda: "too many changes for one round"
                                          in m.read_log(), 600), "the round never ended")
        self.assert_rss(m, "an endless delta round")
        # Started over from now: the root is listed again, without the
        # strangers, and a change arrives.
        self.mutate("create", "after-endless.csv", text="e\n")
        self.assertTrue(wait_until(lambda: os.path.exists(
            os.path.join(m.mountpoint, "after-endless.csv")), 60))
        self.assertFalse(any(n.startswith("endless-") for n in os.listdir(m.mountpoint)))

    def test_huge_delta_page(self):
        m = self.mount(cache="cache-huge-delta", opts="poll_interval=1")
        os.listdir(os.path.join(m.mountpoint, "reports"))
        self.emu.fault(route="delta", kind="hostile", what="huge_empty", mib=7)
        try:
            self.assertTrue(wait_until(lambda: "beyond any real page" in m.read_log(), 30))
        finally:
            self.emu.clear_faults()
        self.assert_rss(m, "a delta page of empty objects")
        self.mutate("create", "reports/after-huge.csv", text="z\n")
        self.assertTrue(wait_until(lambda: os.path.exists(
            os.path.join(m.mountpoint, "reports", "after-huge.csv")), 30))


class Tokens(HostileCase):
    def check(self, env, opts):
        o = f"graph_url={self.emu['graph_url']},cafile={self.emu['ca_file']}"
        return subprocess.run([SPFS, "--check", "-o", o + ("," + opts if opts else "")],
                              env=env, capture_output=True, text=True, timeout=120)

    def test_null_token_type_and_endless_lifetime(self):
        for patch in ({"token_type": None},
                      {"expires_in": 2**63 - 1},
                      {"expires_in": str(2**63 - 1), "refresh_in": 2**63 - 1}):
            with self.subTest(patch=patch):
                self.emu.reset()
                self.emu.fault(route="token", kind="patch", set=patch)
                try:
                    m = self.mount(name="mnt-tok", cache="cache-tok", opts="poll_interval=0")
                    self.assertEqual(self.listdir(m, "reports"), self.expected("reports"))
                    time.sleep(3)  # a refresh loop would show here
                    self.assertIsNone(m.proc.poll())
                    self.assertLessEqual(len(self.emu.requests("token")), 2)
                    m.stop()
                finally:
                    self.emu.clear_faults()

    def test_imds_patched_and_behind_a_proxy(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AZURE_") and k.lower() not in ("no_proxy",)}
        # A proxy nobody listens on: IMDS must not go through it.
        env["http_proxy"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"
        self.emu.fault(route="imds", kind="patch",
                       set={"token_type": None, "expires_in": str(2**63 - 1)})
        try:
            r = self.check(env, f"auth=managed,imds_url={self.emu['imds_url']}")
        finally:
            self.emu.clear_faults()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("result: ok", r.stdout)


class Names(HostileCase):
    def test_root_facet_children(self):
        m = self.mount(cache="cache-rootchild", opts="poll_interval=0")
        self.emu.fault(route="children", kind="hostile", what="root_child", folder="finance")
        try:
            self.assertEqual(self.listdir(m, "finance"), self.expected("finance"))
        finally:
            self.emu.clear_faults()
        out = subprocess.run(["ls", "-a1", os.path.join(m.mountpoint, "finance")],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        self.assertEqual(out.count("."), 1)
        self.assertEqual(out.count(".."), 1)
        log = m.read_log()
        self.assertIn("skipped 2 item(s) with invalid fields or names", log)
        self.assertIn("'rooty', a child marked as the drive root", log)

    def test_duplicate_names_show_the_newest_once_and_log_escaped(self):
        m = self.mount(cache="cache-dups", opts="poll_interval=0")
        self.emu.fault(route="children", kind="hostile", what="duplicates", folder="reports/2026")
        try:
            names = self.listdir(m, "reports/2026")
        finally:
            self.emu.clear_faults()
        twin = "twin\x1b[31m\n.txt"
        self.assertEqual(names, sorted(self.expected("reports/2026") + [twin]))
        self.assertEqual(os.stat(os.path.join(m.mountpoint, "reports", "2026", twin)).st_size, 2)
        # The real q1.csv wins over its older twin, and reads right.
        with open(os.path.join(m.mountpoint, "reports", "2026", "q1.csv"), "rb") as a, \
                open(os.path.join(self.emu["dataset_dir"], "reports", "2026", "q1.csv"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        with open(m.log_path, "rb") as f:
            raw = f.read()
        self.assertNotIn(b"\x1b", raw)
        self.assertIn(b"two items named 'twin\\x1b[31m\\n.txt'", raw)
        self.assertIn(b"two items named 'q1.csv'", raw)

    def test_plain_http_download_url(self):
        m = self.mount(cache="cache-http", opts="poll_interval=0,read_timeout=10")
        self.emu.fault(route="children", kind="hostile", what="http_download", folder="reports")
        try:
            os.listdir(os.path.join(m.mountpoint, "reports"))
        finally:
            self.emu.clear_faults()
        with self.assertRaises(OSError) as e:
            with open(os.path.join(m.mountpoint, "reports", "summary.xlsx"), "rb") as f:
                f.read()
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertIn("refusing the download URL on http://127.0.0.1:", m.read_log())


class Deadlines(HostileCase):
    def test_slow_graph_body_is_bounded_by_read_timeout(self):
        m = self.mount(cache="cache-slow", opts="poll_interval=0,read_timeout=10")
        self.emu.fault(route="children", kind="slow", bps=2, folder="reports")
        t0 = time.time()
        try:
            rc, _ = within(["ls", os.path.join(m.mountpoint, "reports")], 90)
        finally:
            self.emu.clear_faults()
        took = time.time() - t0
        print(f"a listing at 2 bytes/s failed after {took:.1f} s", file=sys.stderr)
        # Failed (EIO) within read_timeout, not after the former 120 s per
        # request (and retries).
        self.assertIsNotNone(rc, "still listing after 90 s")
        self.assertNotEqual(rc, 0)
        self.assertIn("giving up within read_timeout", m.read_log())
        self.assertTrue(5 < took < 60, took)

    def test_slow_download_is_bounded_by_read_timeout(self):
        m = self.mount(cache="cache-slow-dl", opts="poll_interval=0,read_timeout=10")
        p = os.path.join(m.mountpoint, "reports", "2026", "q1.csv")
        os.stat(p)
        self.emu.fault(route="download", kind="slow", bps=2)
        t0 = time.time()
        try:
            rc, _ = within(["cat", p], 90)
        finally:
            self.emu.clear_faults()
        took = time.time() - t0
        print(f"a download at 2 bytes/s failed after {took:.1f} s", file=sys.stderr)
        self.assertIsNotNone(rc, "still reading after 90 s")
        self.assertNotEqual(rc, 0)
        self.assertIn("no download within read_timeout", m.read_log())
        self.assertTrue(took < 60, took)

    def test_download_retry_after_pauses_downloads_only_and_is_capped(self):
        m = self.mount(cache="cache-ra", opts="poll_interval=0,read_timeout=10")
        p = os.path.join(m.mountpoint, "reports", "2026", "q2.csv")
        os.stat(p)
        self.emu.fault(route="download", kind="throttle", retry_after=3600, count=1)
        rc, _ = within(["cat", p], 60)
        self.assertIsNotNone(rc, "a read waited out the hour")
        self.assertNotEqual(rc, 0)
        self.assertIn("pausing downloads for 60 s", m.read_log())
        # Graph is not paused: an uncached folder lists (well within the
        # hour the download host asked for).
        self.emu.reset()
        rc, out = within(["ls", os.path.join(m.mountpoint, "finance")], 60)
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(out.decode().splitlines()), self.expected("finance"))
        self.assertGreaterEqual(len(self.emu.requests("children")), 1)
        # Downloads resume after the cap, not after an hour.
        with open(os.path.join(self.emu["dataset_dir"], "reports", "2026", "q2.csv"), "rb") as f:
            want = f.read()
        self.assertTrue(wait_until(lambda: read_or_none(p) == want, 120))


class LocalSetup(HostileCase):
    def test_cache_dir_symlink_and_foreign_owner_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to chown")
        target = os.path.join(self.tmp, "victim-dir")
        os.mkdir(target, 0o755)
        os.chmod(target, 0o755)
        link = os.path.join(self.tmp, "cache-link")
        os.symlink(target, link)
        theirs = os.path.join(self.tmp, "cache-theirs")
        os.mkdir(theirs, 0o777)
        os.chmod(theirs, 0o777)
        os.chown(theirs, 65534, 65534)
        for cache, said in ((link, "is a symbolic link"), (theirs, "belongs to uid 65534")):
            with self.subTest(cache=cache):
                with self.assertRaises(RuntimeError) as e:
                    self.mount(name="mnt-refused", cache=os.path.basename(cache))
                self.assertIn(said, str(e.exception))
        self.assertEqual(os.stat(target).st_mode & 0o7777, 0o755)
        self.assertEqual(os.stat(theirs).st_mode & 0o7777, 0o777)

    def test_planted_symlink_in_the_cache_is_not_followed(self):
        cache = os.path.join(self.tmp, "cache-plant")
        os.makedirs(cache, 0o700)
        victim = os.path.join(self.tmp, "victim.txt")
        with open(victim, "w") as f:
            f.write("precious\n")
        name = "source-" + hashlib.sha256(self.emu["site_url"].encode()).hexdigest()[:32]
        os.symlink(victim, os.path.join(cache, name))
        m = self.mount(cache="cache-plant", opts="poll_interval=0")
        self.assertEqual(self.listdir(m), self.expected())
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertIn(f"cache file {name} is a symbolic link", m.read_log())

    def test_modes_are_enforced_for_other_users(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to read as another user")
        os.chmod(self.tmp, 0o755)
        m = self.mount(name="mnt-modes", cache="cache-modes", opts="allow_other,umask=077")
        p = os.path.join(m.mountpoint, "README.txt")
        self.assertEqual(os.stat(p).st_mode & 0o777, 0o400)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "cat", p], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)

    def test_source_with_commas_stays_one_name(self):
        folder = "x,allow_other,dev,suid"
        self.mutate("mkdir", folder)
        self.emu.mutate("create", f"{folder}/inside.txt", text="in\n")
        m = self.mount(name="mnt-commas", cache="cache-commas",
                       source=f"drive:{self.emu['drive_id']}:/{folder}", opts="poll_interval=0")
        self.assertEqual(self.listdir(m), ["inside.txt"])
        with open(f"/proc/{m.proc.pid}/mountinfo") as f:
            line = next(ln for ln in f if f" {m.mountpoint} " in ln)
        mount_opts, super_opts = line.split()[5], line.split(" - ")[1].split()[2]
        self.assertIn("nosuid", mount_opts.split(","))
        self.assertIn("nodev", mount_opts.split(","))
        self.assertNotIn("allow_other", super_opts.split(","))
        self.assertIn(folder, line)

    def test_no_core_dump_and_no_proc_access_for_its_own_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run spfs as another user")
        # What uid 65534 needs to run --check: the path, the CA and the
        # service-account token.
        for d in (self.tmp, self.state_dir):
            os.chmod(d, 0o755)
        for f in (self.emu["ca_file"], self.emu["sa_token_file"]):
            os.chmod(f, 0o644)
        self.emu.fault(route="token", kind="latency", ms=4000, count=1)
        env = webhook_env(self.emu, HOME=self.tmp)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        p = subprocess.Popen(as_nobody + [SPFS, "--check", "-o",
                                          f"graph_url={self.emu['graph_url']},"
                                          f"cafile={self.emu['ca_file']}"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)  # waiting on the token endpoint now
            self.assertIsNone(p.poll())
            r = subprocess.run(as_nobody + ["cat", f"/proc/{p.pid}/environ"],
                               capture_output=True)
            self.assertNotEqual(r.returncode, 0, "its own user read /proc/PID/environ")
            self.assertIn(b"Permission denied", r.stderr)
        finally:
            out = p.communicate(timeout=120)[0].decode()
        self.assertEqual(p.returncode, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
