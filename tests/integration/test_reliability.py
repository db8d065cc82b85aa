#!/usr/bin/env python3
"""Reliability and secret hygiene against real mounts: a daemon killed
mid-download leaves a consistent cache that serves only right bytes; no
token, assertion or pre-authenticated URL reaches logs or cache files; the
cache is private; a wrong CA fails clearly; other users cannot read a mount
made without allow_other."""

import errno
import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import SPFS, MountCase, read_or_none, wait_until, webhook_env  # noqa: E402

MiB = 1 << 20
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


class Crash(MountCase):
    start_args = ["--profile", "test", "--many", "20", "--large-size", str(48 * MiB)]

    def test_kill_9_mid_download_then_remount_on_the_same_cache(self):
        cache = os.path.join(self.tmp, "cache-crash")
        m = self.mount(cache="cache-crash", opts="chunk_size=1M")
        # Slow downloads so the kill lands while chunks are being written.
        self.emu.fault(route="download", kind="latency", ms=40)
        rels = ["large/big.bin", "reports/big-export.csv", "reports/2026/q5.csv",
                "finance/budget 2026.xlsx"]
        readers = [subprocess.Popen(["cat", os.path.join(m.mountpoint, r)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for r in rels]
        self.assertTrue(wait_until(lambda: stat_chunks(m) >= 4, 20))
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        for r in readers:
            r.wait(20)  # errors (ENOTCONN), never a hang
        self.emu.clear_faults()
        subprocess.run(["fusermount3", "-uz", m.mountpoint], check=False)
        assert_databases_ok(self, cache)
        m2 = self.mount(name="mnt2", cache="cache-crash", opts="chunk_size=1M")
        for r in rels:
            self.assertEqual(sha256(os.path.join(m2.mountpoint, r)),
                             sha256(os.path.join(self.emu["dataset_dir"], r)), r)
        s = json.loads(os.getxattr(m2.mountpoint, "user.spfs.stats"))
        self.assertGreater(s["cache_hits"], 0, "nothing stored before the kill survived")
        self.assertEqual(s["hash_mismatches"], 0)


def assert_databases_ok(test, cache):
    """Both cache databases pass sqlite's integrity check."""
    dbs = glob.glob(os.path.join(cache, "*.db"))
    test.assertEqual(len(dbs), 2, dbs)
    for db in dbs:
        out = subprocess.run(["sqlite3", db, "PRAGMA integrity_check"], check=True,
                             capture_output=True, text=True).stdout.strip()
        test.assertEqual(out, "ok", db)


def stat_chunks(m):
    try:
        return json.loads(os.getxattr(m.mountpoint, "user.spfs.stats"))["chunks_stored"]
    except OSError:
        return 0


class CacheDamage(MountCase):
    """The content database damaged between mounts (a bad block, torn
    writes, a truncated copy, a file of another version, a power loss while
    it was open): every read is still byte-identical. What cannot be trusted
    at open starts empty, is said once and counted; damaged chunks found
    later are dropped one by one and read from the network."""

    start_args = ["--profile", "test", "--many", "20", "--large-size", str(24 * MiB)]

    def files(self):
        root = self.emu["dataset_dir"]
        return sorted(os.path.relpath(os.path.join(d, f), root)
                      for d, _, fs in os.walk(root) for f in fs)

    def read_all(self, m):
        for rel in self.files():
            self.assertEqual(sha256(os.path.join(m.mountpoint, rel)),
                             sha256(os.path.join(self.emu["dataset_dir"], rel)), rel)
        return json.loads(os.getxattr(m.mountpoint, "user.spfs.stats"))

    def db(self, cache):
        dbs = glob.glob(os.path.join(cache, "*.content.db"))
        self.assertEqual(len(dbs), 1, dbs)
        return dbs[0]

    def remount(self, name, cache):
        m = self.mount(name=name, cache="cache-damage", opts="chunk_size=1M")
        s = self.read_all(m)
        log = m.read_log()
        m.stop()
        return s, log

    def test_damaged_between_mounts_reads_stay_right(self):
        cache = os.path.join(self.tmp, "cache-damage")
        m = self.mount(cache="cache-damage", opts="chunk_size=1M")
        self.read_all(m)
        m.stop()
        db = self.db(cache)
        size = os.path.getsize(db)
        self.assertGreater(size, 24 * MiB)

        # Random bytes over a few blocks in the middle: chunks that fail
        # their check are dropped and downloaded, or sqlite finds its own
        # pages damaged and the store starts again.
        rng = __import__("random").Random(7)
        with open(db, "r+b") as f:
            for _ in range(5):
                f.seek(rng.randrange(size // 4, size - 65536))
                f.write(rng.randbytes(65536))
        s, log = self.remount("m1", cache)
        self.assertGreater(s["cache_damaged_chunks"] + s["cache_resets"], 0, s)
        self.assertGreater(s["downloads"], 0, s)
        self.assertEqual(s["hash_mismatches"], 0, s)

        # Cut to 40% (of what it holds now: the damage above may have
        # made it start again): not trusted at open, started empty, said
        # once.
        now = os.path.getsize(db)
        self.assertGreater(now, 1 * MiB)
        os.truncate(db, now * 4 // 10)
        s, log = self.remount("m2", cache)
        self.assertEqual(s["cache_resets"], 1, s)
        self.assertEqual(log.count("starting empty"), 1, log)
        self.assertIn("truncated", log)

        # A file of an older schema, then one that is no database at all.
        subprocess.run(["sqlite3", db, "PRAGMA user_version=3"], check=True)
        s, log = self.remount("m3", cache)
        self.assertEqual(s["cache_resets"], 1, s)
        self.assertIn("another version of spfs", log)
        with open(db, "wb") as f:
            f.write(b"not a database at all " * 1000)
        s, log = self.remount("m4", cache)
        self.assertEqual(s["cache_resets"], 1, s)
        self.assertIn("not a database", log)
        unstored = s["store_skipped"] + s["store_errors"]

        # A clean unmount is trusted (no download but of what the store
        # skipped); left open when the machine went down (another boot's
        # marker), writes may have been lost, so nothing of it is trusted.
        s, log = self.remount("m5", cache)
        self.assertEqual(s["cache_resets"], 0, s)
        self.assertLessEqual(s["downloads"], unstored, s)
        with open(db + ".open", "w") as f:
            f.write("00000000-0000-4000-8000-000000000000")
        s, log = self.remount("m6", cache)
        self.assertEqual(s["cache_resets"], 1, s)
        self.assertIn("the machine restarted while it was open", log)
        assert_databases_ok(self, cache)


class Chaos(MountCase):
    start_args = ["--profile", "test", "--many", "30", "--large-size", str(6 * MiB)]

    def test_cp_r_through_throttling_resets_and_latency(self):
        m = self.mount(cache="cache-chaos", opts="chunk_size=1M,poll_interval=0")
        self.emu.reset()
        graph = ["children", "item", "item_by_path", "delta", "content", "download"]
        self.emu.fault(route=graph, kind="throttle", rate=0.2, retry_after=1)
        self.emu.fault(route=graph, kind="throttle", rate=0.05, retry_after=2, status=503)
        self.emu.fault(route="download", kind="reset", rate=0.1, after_bytes=50000)
        self.emu.fault(route="download", kind="truncate", rate=0.1, after_bytes=70000)
        self.emu.fault(route="*", kind="latency", ms=50, ms_max=200)
        dst = os.path.join(self.tmp, "chaos-copy")
        t0 = time.time()
        try:
            r = subprocess.run(["cp", "-r", m.mountpoint + "/.", dst], capture_output=True,
                               text=True, timeout=600)
        finally:
            self.emu.clear_faults()
        self.assertEqual(r.returncode, 0, r.stderr)  # no EIO anywhere
        for d, _, files in os.walk(self.emu["dataset_dir"]):
            for n in files:
                rel = os.path.relpath(os.path.join(d, n), self.emu["dataset_dir"])
                self.assertEqual(sha256(os.path.join(dst, rel)), sha256(os.path.join(d, n)), rel)
        log = [e for e in self.emu.requests() if e["route"] in graph]
        throttled = [e for e in log if e["status"] in (429, 503) and e.get("retry_after")]
        self.assertGreater(len(throttled), 3, "the chaos did not happen")
        # After Graph throttles, no Graph request arrives before Retry-After
        # has passed, except those already on their way when the answer
        # came (sent before spfs saw it: allow 0.25 s for a request's set-up
        # and its way in; the 50-200 ms latency is spent after arrival, as
        # the log's `t` is when a request arrived). Download hosts throttle
        # on their own.
        api = [e for e in log if e["route"] != "download"]
        for t in (e for e in throttled if e["route"] != "download"):
            early = [e for e in api if t["end"] + 0.25 < e["t"] < t["end"] + t["retry_after"] - 0.05]
            self.assertEqual(early, [], f"requests within Retry-After of {t}")
        print(f"chaos copy: {time.time() - t0:.1f} s, {len(log)} requests, "
              f"{len(throttled)} throttled", file=sys.stderr)


class RemoteEdits(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(1 * MiB)]

    def test_modified_and_deleted_while_read_in_loops(self):
        m = self.mount(cache="cache-edits", opts="poll_interval=1,chunk_size=64K")
        path = os.path.join(m.mountpoint, "reports", "2026", "q2.csv")
        with open(os.path.join(self.emu["dataset_dir"], "reports", "2026", "q2.csv"), "rb") as f:
            versions = {f.read()}
        lock = threading.Lock()
        stop = threading.Event()
        bad, reads, errors = [], [0], []

        def reader():
            while not stop.is_set():
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError as e:
                    errors.append(e.errno)  # allowed: the version went away
                    continue
                with lock:
                    reads[0] += 1
                    if data not in versions:
                        bad.append(data[:80])

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(12):
                # Sizes that cross chunk boundaries, different every time.
                text = "".join(f"v{i},{n}\n" for n in range(3000 + 997 * i))
                with lock:
                    versions.add(text.encode())
                self.emu.mutate("modify", "reports/2026/q2.csv", text=text)
                time.sleep(0.3)
            time.sleep(2.5)  # the last version reaches the mount
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(bad, [], "a read returned bytes of no single version")
        self.assertGreater(reads[0], 20)
        print(f"remote edits: {reads[0]} reads of {len(versions)} versions, "
              f"errors {sorted(set(errors))}", file=sys.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), text.encode())
        self.assertTrue(set(errors) <= {errno.EIO, errno.ESTALE, errno.ENOENT}, errors)

        # Deleted remotely: the next open says ENOENT once delta saw it.
        victim = os.path.join(m.mountpoint, "reports", "2026", "q1.csv")
        with open(victim, "rb") as held:
            self.emu.mutate("delete", "reports/2026/q1.csv")
            self.assertTrue(wait_until(lambda: not os.path.exists(victim), 10))
            try:  # the open handle finishes or fails cleanly
                held.read()
            except OSError as e:
                self.assertIn(e.errno, (errno.EIO, errno.ENOENT, errno.ESTALE))
        with self.assertRaises(FileNotFoundError):
            open(victim, "rb")


class DiskFull(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(24 * MiB)]

    def small_volume(self, name, size):
        """A tmpfs of size at self.tmp/name, unmounted after the test."""
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        path = os.path.join(self.tmp, name)
        os.makedirs(path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", path], check=False)
        return path

    def test_full_cache_disk_still_serves_right_bytes(self):
        cache = self.small_volume("small-disk", "16m")
        m = self.mount(cache="small-disk", opts="chunk_size=1M")
        for _ in os.walk(m.mountpoint):  # the tree is known before the disk fills
            pass
        # Something else fills the disk.
        with open(os.path.join(cache, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * MiB)
                    f.flush()
            except OSError:
                pass
        for rel in ("large/big.bin", "reports/big-export.csv", "tiny.csv"):
            self.assertEqual(sha256(os.path.join(m.mountpoint, rel)),
                             sha256(os.path.join(self.emu["dataset_dir"], rel)), rel)
        # Again, and a listing, while the disk is still full.
        self.assertEqual(sha256(os.path.join(m.mountpoint, "large", "big.bin")),
                         sha256(os.path.join(self.emu["dataset_dir"], "large", "big.bin")))
        self.assertIn("q1.csv", os.listdir(os.path.join(m.mountpoint, "reports", "2026")))
        s = json.loads(os.getxattr(m.mountpoint, "user.spfs.stats"))
        self.assertGreater(s["store_errors"], 0, s)
        m.stop()
        log = m.read_log()
        self.assertEqual(log.count("cannot store"), 1, log)  # said once
        self.assertLess(log.count("\n"), 20, log)  # and not once per chunk
        os.unlink(os.path.join(cache, "filler"))
        assert_databases_ok(self, cache)

    def test_tiny_volume_from_the_start(self):
        # The cache's volume holds a fraction of the library: the content
        # store must leave the metadata store room to list, its WAL
        # included, and stream what it cannot keep.
        cache = self.small_volume("tiny-disk", "4m")
        m = self.mount(cache="tiny-disk", opts="chunk_size=1M")
        dst = os.path.join(self.tmp, "tiny-copy")
        r = subprocess.run(["cp", "-r", m.mountpoint + "/.", dst], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        for d, _, files in os.walk(self.emu["dataset_dir"]):
            for n in files:
                rel = os.path.relpath(os.path.join(d, n), self.emu["dataset_dir"])
                self.assertEqual(sha256(os.path.join(dst, rel)), sha256(os.path.join(d, n)), rel)
        m.stop()
        assert_databases_ok(self, cache)
        self.assertNotIn(" error: ", m.read_log())


class GraphDown(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(2 * MiB)]

    def test_service_unreachable_then_back(self):
        m = self.mount(cache="cache-down", opts="poll_interval=1,read_timeout=10")
        cached = os.path.join(m.mountpoint, "reports", "2026", "q1.csv")
        with open(cached, "rb") as f:
            want = f.read()
        os.listdir(os.path.join(m.mountpoint, "reports"))
        # Everything the mount talks to now drops the connection.
        self.emu.fault(route="*", kind="reset", after_bytes=0)
        try:
            time.sleep(1.5)  # a delta round fails meanwhile
            with open(cached, "rb") as f:
                self.assertEqual(f.read(), want)  # cached: still served
            self.assertIn("q1.csv", os.listdir(os.path.join(m.mountpoint, "reports", "2026")))
            t0 = time.time()
            with self.assertRaises(OSError) as e:
                with open(os.path.join(m.mountpoint, "reports", "2026", "q2.csv"), "rb") as f:
                    f.read()
            self.assertEqual(e.exception.errno, errno.EIO)
            # Within read_timeout (10 s, and a connection attempt), after
            # retrying: not at the first refusal.
            took = time.time() - t0
            self.assertTrue(5 < took < 25, f"an uncached read failed after {took:.1f} s")
        finally:
            self.emu.clear_faults()
        # Back: the same mount reads what it could not, with no remount.
        with open(os.path.join(self.emu["dataset_dir"], "reports", "2026", "q2.csv"), "rb") as f:
            want2 = f.read()
        self.assertTrue(wait_until(lambda: read_or_none(
            os.path.join(m.mountpoint, "reports", "2026", "q2.csv")) == want2, 60))
        # The change poll recovers too (a round caught in the outage gives
        # up within read_timeout).
        self.assertTrue(wait_until(lambda: json.loads(
            os.getxattr(m.mountpoint, "user.spfs.stats"))["delta_healthy"], 60))


    def test_service_stopped_then_restarted(self):
        m = self.mount(cache="cache-stopped", opts="poll_interval=1,read_timeout=10")
        reports = os.path.join(m.mountpoint, "reports", "2026")
        with open(os.path.join(reports, "q3.csv"), "rb") as f:
            want = f.read()
        # Every service stops as if its process died: ports refuse, open
        # connections are cut. Only the control port stays.
        self.emu.call("POST", "outage", {"down": True})
        try:
            time.sleep(1.5)  # a delta round fails meanwhile
            with open(os.path.join(reports, "q3.csv"), "rb") as f:
                self.assertEqual(f.read(), want)
            self.assertIn("q4.csv", os.listdir(reports))
            t0 = time.time()
            with self.assertRaises(OSError) as e:
                with open(os.path.join(reports, "q4.csv"), "rb") as f:
                    f.read()
            self.assertEqual(e.exception.errno, errno.EIO)
            # Within read_timeout (10 s, and a connection attempt), after
            # retrying: not at the first refusal.
            took = time.time() - t0
            self.assertTrue(5 < took < 25, f"an uncached read failed after {took:.1f} s")
            # A folder never listed: its listing gives up within
            # read_timeout too, not after every Graph backoff step.
            t0 = time.time()
            with self.assertRaises(OSError) as e:
                os.listdir(os.path.join(m.mountpoint, "many"))
            self.assertEqual(e.exception.errno, errno.EIO)
            took = time.time() - t0
            self.assertTrue(5 < took < 25, f"an uncached listing failed after {took:.1f} s")
        finally:
            self.emu.call("POST", "outage", {"down": False})
        with open(os.path.join(self.emu["dataset_dir"], "reports", "2026", "q4.csv"), "rb") as f:
            want4 = f.read()
        self.assertTrue(wait_until(lambda: read_or_none(os.path.join(reports, "q4.csv")) == want4,
                                   60))
        self.assertEqual(len(os.listdir(os.path.join(m.mountpoint, "many"))), 5)
        self.assertTrue(wait_until(lambda: json.loads(
            os.getxattr(m.mountpoint, "user.spfs.stats"))["delta_healthy"], 60))
        # Said, not shouted: a few lines for the outage, not one per retry.
        log = m.read_log()
        warnings = [ln for ln in log.splitlines() if " warn: " in ln or " error: " in ln]
        print("outage log:\n" + "\n".join(warnings), file=sys.stderr)
        self.assertLessEqual(len(warnings), 6, warnings)


class Secrets(MountCase):
    start_args = ["--profile", "test", "--many", "20", "--large-size", str(2 * MiB)]

    def test_no_secret_in_logs_or_cache_and_private_files(self):
        cache = os.path.join(self.tmp, "cache-secrets")
        m = self.mount(cache="cache-secrets",
                       opts="log_level=trace,poll_interval=1,token_file=" + self.emu["sa_token_file"])
        paths = [os.path.join(d, n) for d, _, files in os.walk(m.mountpoint) for n in files]
        # Expired download URLs and a Graph 401 put refreshes, with their
        # URLs and tokens, in the log's way.
        self.emu.call("POST", "download-urls", {"expire_now": True})
        self.emu.fault(route="children", kind="expired_token", count=1)
        for p in paths:
            with open(p, "rb") as f:
                f.read()
        self.emu.mutate("modify", "tiny.csv", text="b\n")
        self.assertTrue(wait_until(
            lambda: open(os.path.join(m.mountpoint, "tiny.csv"), "rb").read() == b"b\n", 15))
        os.listdir(os.path.join(m.mountpoint, "names"))
        m.stop()

        with open(self.emu["sa_token_file"], "rb") as f:
            assertion = f.read().strip()
        with open(self.emu["client_secret_file"], "rb") as f:
            secret = f.read().strip()
        files = [m.log_path] + [p for p in glob.glob(os.path.join(cache, "*")) if os.path.isfile(p)]
        log = open(m.log_path, "rb").read()
        self.assertIn(b" debug: ", log)  # the most verbose level was on
        self.assertIn(b"getting a fresh one", log)
        for path in files:
            data = open(path, "rb").read()
            self.assertIsNone(JWT.search(data), f"a JWT in {path}")
            self.assertNotIn(assertion, data, path)
            self.assertNotIn(secret, data, path)
            self.assertNotIn(b"tempauth=", data, f"a pre-authenticated URL in {path}")
            self.assertNotIn(b"Bearer ", data, path)
        # The cache is private to the mounting user.
        self.assertEqual(os.stat(cache).st_mode & 0o777, 0o700)
        for path in files[1:]:
            self.assertEqual(os.stat(path).st_mode & 0o077, 0, path)

    def test_wrong_ca_is_a_clear_error(self):
        ca = "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.exists(ca):
            self.skipTest("no system CA bundle")
        r = subprocess.run([SPFS, "--check", self.emu["site_url"], "-o",
                            f"graph_url={self.emu['graph_url']},cafile={ca}"],
                           env=webhook_env(self.emu), capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        text = (r.stdout + r.stderr).lower()
        self.assertIn("certificate", text)
        self.assertNotIn("result: ok", text)

    def test_other_users_need_allow_other(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to read as another user")
        os.chmod(self.tmp, 0o755)  # others may walk to the mount point
        m = self.mount(cache="cache-users")
        p = os.path.join(m.mountpoint, "README.txt")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", p]
        r = subprocess.run(as_nobody, capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        m.stop()
        m = self.mount(name="mnt-other", cache="cache-users", opts="allow_other")
        r = subprocess.run(as_nobody[:-1] + [os.path.join(m.mountpoint, "README.txt")],
                           capture_output=True)
        with open(os.path.join(self.emu["dataset_dir"], "README.txt"), "rb") as f:
            self.assertEqual((r.returncode, r.stdout), (0, f.read()))
        # Read-only for everyone, root included.
        with self.assertRaises(OSError):
            open(os.path.join(m.mountpoint, "README.txt"), "a")


if __name__ == "__main__":
    unittest.main(verbosity=2)
