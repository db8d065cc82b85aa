#!/usr/bin/env python3
"""Reading files through a real FUSE mount: bytes equal to the library's,
ranged and parallel downloads, the sqlite content cache across remounts,
single flight, faults mid-body, honest sizes, versions that change while
open, the cache cap and bounded memory."""

import errno
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import MountCase, wait_until  # noqa: E402

MiB = 1 << 20


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def files_under(root):
    out = []
    for dirpath, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, n), root) for n in files]
    return sorted(out)


def stats(m):
    return json.loads(os.getxattr(m.mountpoint, "user.spfs.stats"))


def parse_range(entry):
    """(first, last) of a download request's Range header, or None."""
    r = entry.get("range")
    if not r:
        return None
    first, _, last = r.removeprefix("bytes=").partition("-")
    return int(first), int(last) if last else None


class ReadCase(MountCase):
    def dataset(self, rel):
        return os.path.join(self.emu["dataset_dir"], rel)

    def assert_same_file(self, got, want):
        self.assertEqual(os.path.getsize(got), os.path.getsize(want), got)
        self.assertEqual(sha256_file(got), sha256_file(want), got)

    def served(self, rel):
        url = self.graph(f"/drives/{self.emu['drive_id']}/root:/"
                         + urllib.parse.quote(rel)).json()
        r = self.get(url["@microsoft.graph.downloadUrl"])
        self.assertEqual(r.status, 200)
        return r.body


class Bytes(ReadCase):
    start_args = ["--profile", "test", "--many", "20", "--large-size", str(64 * MiB)]

    def test_cp_r_byte_identical_then_remount_from_cache(self):
        m = self.mount(cache="cache-cp", opts="chunk_size=1M")
        dst = os.path.join(self.tmp, "copy")
        subprocess.run(["cp", "-r", m.mountpoint + "/.", dst], check=True)
        want = files_under(self.emu["dataset_dir"])
        self.assertEqual(files_under(dst), want)
        self.assertIn("empty.csv", want)
        self.assertIn("names/日本語/中身.csv", want)
        for rel in want:
            self.assert_same_file(os.path.join(dst, rel), self.dataset(rel))
        s = stats(m)
        self.assertGreater(s["chunks_stored"], 64)
        self.assertEqual(s["hash_mismatches"], 0)
        self.assertGreaterEqual(s["hash_verified"], len(want) - 1)
        self.assertGreaterEqual(s["token_requests"], 1)
        self.assertGreater(s["token_expires_at"], time.time())
        self.assertEqual(s["download_bytes"], sum(os.path.getsize(self.dataset(r)) for r in want))
        # The store writes beside the downloads and never makes a reader
        # wait: a chunk it could not keep up with is skipped and counted.
        unstored = s["store_skipped"] + s["store_errors"]
        m.stop()

        # Remounted on the same cache: the same bytes, and no download but
        # of what the store skipped (none on a machine that is not loaded).
        m = self.mount(cache="cache-cp", opts="chunk_size=1M")
        os.listdir(m.mountpoint)
        self.emu.reset()
        for rel in want:
            self.assert_same_file(os.path.join(m.mountpoint, rel), self.dataset(rel))
        c = self.emu.counters()
        print(f"remount: {c}, {unstored} chunks were not stored", file=sys.stderr)
        self.assertLessEqual(c.get("download", 0), unstored, c)
        self.assertNotIn("item", c, c)
        self.assertLessEqual(stats(m)["downloads"], unstored)

    def test_large_file_cat_dd_and_random_preads(self):
        m = self.mount(cache="cache-large", opts="chunk_size=1M,readahead=4M")
        path = os.path.join(m.mountpoint, "large", "big.bin")
        with open(self.dataset("large/big.bin"), "rb") as f:
            truth = f.read()
        size = len(truth)
        # Cold random access first: only the chunks touched are fetched.
        rng = random.Random(5)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.emu.reset()
            for _ in range(1000):
                off = rng.choice([rng.randrange(size), size - rng.randrange(1, 5000),
                                  rng.randrange(0, size, MiB)])
                n = rng.choice([1, 7, 4096, 65536, 131073, rng.randrange(1, 600000)])
                self.assertEqual(os.pread(fd, n, off), truth[off:off + n], (off, n))
            self.assertEqual(os.pread(fd, 100, size), b"")
            self.assertEqual(os.pread(fd, 100, size + MiB), b"")
        finally:
            os.close(fd)
        downloads = self.emu.requests("download")
        self.assertLessEqual(len(downloads), size // MiB + 8)
        for e in downloads:  # ranged, never the whole 64 MiB
            r = parse_range(e)
            self.assertIsNotNone(r, e)
            self.assertLessEqual(r[1] - r[0] + 1, MiB, e)
        # dd at odd offsets and block sizes.
        for skip, bs, count in [(1, 12345, 100), (MiB - 1, 4097, 700), (size - 99999, 65536, 5),
                                (33 * MiB + 17, 1 << 20, 3)]:
            out = subprocess.run(["dd", f"if={path}", f"bs={bs}", f"skip={skip}", f"count={count}",
                                  "iflag=skip_bytes", "status=none"],
                                 check=True, capture_output=True).stdout
            self.assertEqual(out, truth[skip:skip + bs * count], (skip, bs, count))
        # cat of the whole file.
        out = subprocess.run(["cat", path], check=True, capture_output=True).stdout
        self.assertEqual(hashlib.sha256(out).digest(), hashlib.sha256(truth).digest())
        self.assertGreaterEqual(stats(m)["hash_verified"], 1)

    def test_concurrent_readers_fetch_each_chunk_once(self):
        m = self.mount(cache="cache-conc", opts="chunk_size=1M")
        path = os.path.join(m.mountpoint, "large", "big.bin")
        want = sha256_file(self.dataset("large/big.bin"))
        self.emu.reset()
        results = [None] * 4
        start = threading.Barrier(4)

        def reader(i):
            start.wait()
            results[i] = sha256_file(path)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(results, [want] * 4)
        ranges = sorted(parse_range(e) for e in self.emu.requests("download"))
        self.assertEqual(len(ranges), 64, ranges)
        for (a0, a1), (b0, _) in zip(ranges, ranges[1:]):
            self.assertLess(a1, b0, "a byte range was downloaded twice")
        self.assertEqual(ranges[0][0], 0)
        self.assertEqual(ranges[-1][1], 64 * MiB - 1)

    def test_url_expiry_and_broken_bodies_mid_read(self):
        m = self.mount(cache="cache-faults", opts="chunk_size=1M,readahead=2M")
        path = os.path.join(m.mountpoint, "large", "big.bin")
        with open(self.dataset("large/big.bin"), "rb") as f:
            truth = f.read()
        self.emu.reset()

        def faults_left():
            return any(f["count"] for f in self.emu.call("GET", "faults")["faults"])

        with open(path, "rb") as f:
            got = f.read(3 * MiB)
            # Bodies break mid-way: spfs resumes with Range. Readahead keeps
            # requests in flight past what was read, so the two phases must
            # not overlap: the URLs expire only once both faults have fired
            # (else a late 401 could take a fault meant for a body).
            self.emu.fault(route="download", kind="reset", count=2, after_bytes=100000)
            self.emu.fault(route="download", kind="truncate", count=1, after_bytes=300000)
            while faults_left():
                b = f.read(MiB)
                self.assertTrue(b, "the file ended before the faults fired")
                got += b
            # Every issued URL stops working: spfs asks Graph for a new one.
            self.emu.call("POST", "download-urls", {"expire_now": True})
            got += f.read()
        self.assertEqual(got, truth)
        s = stats(m)
        self.assertGreaterEqual(s["url_refreshes"], 1, s)
        log = self.emu.requests("download")
        self.assertGreaterEqual(len([e for e in log if e["status"] == 401]), 1)
        # Three firings on two or three bodies: a request that arrives after
        # both faults were armed carries the two (the truncate is logged);
        # readahead may slip one in between the two arming calls.
        broken = [e for e in log if e.get("fault") in ("reset", "truncate")]
        self.assertEqual({e["fault"] for e in broken}, {"reset", "truncate"}, broken)
        self.assertIn(len(broken), (2, 3), broken)
        self.assertTrue(all(e["status"] == 206 for e in broken), broken)
        # Each cut body was resumed from no later than where it broke (a
        # reset may lose bytes in flight), to the same end.
        cut = {"reset": 100000, "truncate": 300000}
        for e in broken:
            first, last = parse_range(e)

            def resumes(r):
                r_first, r_last = parse_range(r) or (-1, -1)
                return (r["t"] > e["t"] and r_last == last
                        and first <= r_first <= first + cut[e["fault"]])

            self.assertTrue(any(resumes(r) for r in log), (e, log))
        self.assertGreaterEqual(s["download_retries"], 1, s)

    def test_folder_read_in_order_is_prefetched(self):
        m = self.mount(cache="cache-prefetch")
        os.listdir(os.path.join(m.mountpoint, "many"))
        self.emu.reset()
        self.emu.fault(route="download", kind="latency", ms=100)
        dst = os.path.join(self.tmp, "many-copy")
        try:
            subprocess.run(["cp", "-r", os.path.join(m.mountpoint, "many"), dst], check=True)
        finally:
            self.emu.clear_faults()
        for rel in files_under(os.path.join(self.emu["dataset_dir"], "many")):
            self.assert_same_file(os.path.join(dst, rel), self.dataset("many/" + rel))
        s = stats(m)
        self.assertGreaterEqual(s["prefetched_files"], 10, s)
        log = sorted(self.emu.requests("download"), key=lambda e: e["t"])
        self.assertEqual(len(log), 20)  # each file once
        # Downloads overlap: the next files were fetched while one was copied.
        overlapping = sum(1 for a, b in zip(log, log[1:]) if b["t"] < a["end"])
        self.assertGreaterEqual(overlapping, 5, log)

    def test_cache_off_streams_without_storing(self):
        m = self.mount(cache="cache-off", opts="cache=off,chunk_size=1M")
        for rel in ("large/big.bin", "reports/big-export.csv", "empty.csv", "tiny.csv"):
            self.assert_same_file(os.path.join(m.mountpoint, rel), self.dataset(rel))
        s = stats(m)
        self.assertFalse(s["cache_enabled"])
        self.assertEqual(s["chunks_stored"], 0)
        self.assertFalse(any(n.endswith(".content.db") for n in
                             os.listdir(os.path.join(self.tmp, "cache-off"))))

    def test_memory_stays_bounded_while_streaming(self):
        for opts in ("chunk_size=4M", "cache=off"):
            m = self.mount(name="mnt-rss", cache="cache-rss-" + opts[:5], opts=opts)
            with open(f"/proc/{m.proc.pid}/maps") as maps:
                sanitized = "libasan" in maps.read()
            if sanitized:
                # Unmounted first: the next mount would stack on this one.
                m.stop()
                self.skipTest("AddressSanitizer's shadow and quarantine dwarf the RSS")
            with self.subTest(opts=opts):
                peak = [0]
                done = threading.Event()

                def sample():
                    while not done.is_set():
                        with open(f"/proc/{m.proc.pid}/status") as st:
                            for line in st:
                                if line.startswith("VmRSS:"):
                                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
                        time.sleep(0.01)

                t = threading.Thread(target=sample)
                t.start()
                try:
                    self.assert_same_file(os.path.join(m.mountpoint, "large", "big.bin"),
                                          self.dataset("large/big.bin"))
                finally:
                    done.set()
                    t.join()
                    m.stop()  # even when failing: the next subtest mounts here
                print(f"peak RSS {opts}: {peak[0] / MiB:.1f} MiB", file=sys.stderr)
                self.assertGreater(peak[0], 0)
                self.assertLess(peak[0], 64 * MiB, f"peak RSS {peak[0] >> 20} MiB")


class CacheCap(ReadCase):
    start_args = ["--profile", "test", "--many", "20", "--large-size", str(48 * MiB)]

    def test_cap_kept_and_evicted_files_read_again(self):
        cache = os.path.join(self.tmp, "cache-cap")
        m = self.mount(cache="cache-cap", opts="cache_size=16M,chunk_size=1M,readahead=4M")
        big = os.path.join(m.mountpoint, "large", "big.bin")
        self.assert_same_file(big, self.dataset("large/big.bin"))
        self.assert_same_file(os.path.join(m.mountpoint, "reports", "big-export.csv"),
                              self.dataset("reports/big-export.csv"))
        s = stats(m)
        self.assertGreater(s["evicted_chunks"], 0)
        self.assertLessEqual(s["cache_bytes"], 16 * MiB, s)
        db = [os.path.join(cache, n) for n in os.listdir(cache) if ".content.db" in n]
        # The cap bounds the disk use of everything the library keeps in
        # the cache directory (the metadata store and journals included):
        # what du says, which a volume's sizeLimit is measured by.
        def used():
            return sum(os.stat(os.path.join(cache, n)).st_blocks * 512
                       for n in os.listdir(cache))
        self.assertLessEqual(used(), 16 * MiB, sorted(os.listdir(cache)))
        self.assertLessEqual(s["cache_disk_bytes"], 16 * MiB, s)
        # The evicted beginning reads again, right.
        with open(big, "rb") as f, open(self.dataset("large/big.bin"), "rb") as want:
            self.assertEqual(f.read(2 * MiB), want.read(2 * MiB))
        self.assert_same_file(big, self.dataset("large/big.bin"))
        self.assertLessEqual(used(), 16 * MiB, sorted(os.listdir(cache)))
        m.stop()
        main_db = [p for p in db if p.endswith(".content.db")]
        out = subprocess.run(["sqlite3", main_db[0], "PRAGMA integrity_check"],
                             capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "ok")


class ServedBytes(ReadCase):
    """The server's bytes differ from what the listing says (SharePoint
    rewrites some Office files): mutates the library, so a class of its own."""

    start_args = ["--profile", "test", "--many", "20", "--large-size", str(4 * MiB)]

    def test_longer_and_shorter_than_listed(self):
        # Office files: SharePoint rewrites them, so their bytes are served
        # whatever the listing says (after one download again).
        longer = self.emu.call("POST", "served-bytes", {"path": "reports/summary.xlsx",
                                                         "append": 3 * MiB + 5})
        self.assertGreater(longer["served_size"], longer["listed_size"])
        shorter = self.emu.call("POST", "served-bytes", {"path": "finance/budget 2026.xlsx",
                                                          "text": "a,b\n1,2\n"})
        self.assertEqual(shorter["served_size"], 8)
        m = self.mount(cache="cache-served", opts="chunk_size=1M")
        for rel, info in (("reports/summary.xlsx", longer),
                          ("finance/budget 2026.xlsx", shorter)):
            p = os.path.join(m.mountpoint, rel)
            self.assertEqual(os.stat(p).st_size, info["listed_size"])
            with open(p, "rb") as f:
                self.assertEqual(os.fstat(f.fileno()).st_size, info["served_size"])
                data = f.read()
            self.assertEqual(data, self.served(rel))
            self.assertEqual(os.stat(p).st_size, info["served_size"])
            # cp sees every byte too (it trusts st_size).
            dst = os.path.join(self.tmp, os.path.basename(rel))
            subprocess.run(["cp", p, dst], check=True)
            with open(dst, "rb") as f:
                self.assertEqual(f.read(), data)
        self.assertGreaterEqual(stats(m)["size_corrections"], 2)

    def test_hash_mismatch_redownloaded_once_then_served_and_counted(self):
        rel = "reports/rewritten.xlsx"
        size = os.path.getsize(self.dataset(rel))
        self.emu.call("POST", "served-bytes", {"path": rel, "size": size, "seed": 9})
        m = self.mount(cache="cache-hash")
        self.emu.reset()
        with open(os.path.join(m.mountpoint, rel), "rb") as f:
            data = f.read()
        self.assertEqual(data, self.served(rel))
        with open(self.dataset(rel), "rb") as f:
            self.assertNotEqual(data, f.read())
        s = stats(m)
        self.assertEqual(s["hash_mismatches"], 2, s)
        self.assertEqual(len(self.emu.requests("download")), 3)  # two by spfs, one by the test
        self.assertIn("quickXorHash", m.read_log())


    def test_hash_mismatch_of_other_files_fails_and_is_never_cached(self):
        """Not an Office file: bytes that never match SharePoint's hash are
        an error (EIO, a line naming the file), never cached as verified,
        and downloaded again at the next open: once the server is mended
        the same mount reads the right bytes."""
        rel = "reports/2026/q3.csv"
        with open(self.dataset(rel), "rb") as f:
            truth = f.read()
        self.emu.call("POST", "served-bytes", {"path": rel, "append": 1000})
        cache = os.path.join(self.tmp, "cache-strict")
        m = self.mount(cache="cache-strict", opts="chunk_size=1M")
        p = os.path.join(m.mountpoint, rel)
        for attempt in range(2):  # each open downloads again
            self.emu.reset()
            with self.assertRaises(OSError) as e:
                with open(p, "rb") as f:
                    f.read()
            self.assertEqual(e.exception.errno, errno.EIO)
            # The emulator logs a request once it has answered it.
            self.assertTrue(wait_until(lambda: len(self.emu.requests("download")) >= 1, 10),
                            attempt)
        self.assertIn(os.path.basename(rel), m.read_log())
        self.assertIn("quickXorHash", m.read_log())
        s = stats(m)
        self.assertGreaterEqual(s["hash_mismatches"], 2, s)
        m.stop()
        db = [os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(".content.db")]
        out = subprocess.run(["sqlite3", db[0], "SELECT COUNT(*) FROM files WHERE verified=1;"
                              "SELECT COUNT(*) FROM chunks"], capture_output=True, text=True,
                             check=True)
        self.assertEqual(out.stdout.split(), ["0", "0"], "nothing of it stays cached")
        # The server mended: the next open downloads and verifies it.
        self.emu.call("POST", "served-bytes", {"path": rel, "text": truth.decode()})
        m = self.mount(cache="cache-strict", opts="chunk_size=1M")
        with open(os.path.join(m.mountpoint, rel), "rb") as f:
            self.assertEqual(f.read(), truth)
        self.assertGreaterEqual(stats(m)["hash_verified"], 1)


class RemoteChanges(ReadCase):
    """A file modified on the server while open: its reader sees one version
    whole, or an error, never a mix; the next open sees the new one."""

    start_args = ["--profile", "test", "--many", "20", "--large-size", str(24 * MiB)]

    def test_modified_while_open(self):
        rel = "large/big.bin"
        with open(self.dataset(rel), "rb") as f:
            old = f.read()
        m = self.mount(cache="cache-mod", opts="chunk_size=1M,readahead=1M,poll_interval=1")
        p = os.path.join(m.mountpoint, rel)
        got = b""
        error = None
        with open(p, "rb") as f:
            got = f.read(2 * MiB)
            item = self.emu.mutate("modify", rel, size=20 * MiB, seed=77)
            time.sleep(2.5)  # delta notices meanwhile
            try:
                while True:
                    b = f.read(MiB)
                    if not b:
                        break
                    got += b
            except OSError as e:
                error = e
        print(f"modified while open: {len(got)} bytes, error {error}", file=sys.stderr)
        if error is None:
            self.assertEqual(got, old)
        else:
            self.assertEqual(got, old[:len(got)])
        new = self.served(rel)
        self.assertEqual(len(new), 20 * MiB)
        self.assertEqual(item["size"], len(new))
        self.assertTrue(wait_until(lambda: os.stat(p).st_size == len(new), 10))
        with open(p, "rb") as f:
            self.assertEqual(f.read(), new)


if __name__ == "__main__":
    unittest.main(verbosity=2)
