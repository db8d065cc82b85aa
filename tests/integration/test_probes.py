#!/usr/bin/env python3
"""What the Kubernetes probes answer, against real mounts: /mounted (the
startup probe) once mounted, even from the cache during an Entra outage;
/ready (readiness) only while the library's root can be listed, from the
network or the cache; /healthz (liveness) failing while the filesystem is
wedged (its cache volume frozen mid-write, so the metadata store's lock is
held in D state) and passing again once it is not."""

import errno
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import MountCase, wait_until  # noqa: E402


def probe(port, path):
    """(status, body) of GET path, or (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def metrics_port(mount):
    """The port of the newest "metrics on" line (logs append across mounts)."""
    pat = r"metrics on http://\S+ \(port (\d+)\)"
    if not wait_until(lambda: re.search(pat, mount.read_log()), 10):
        raise AssertionError("no metrics line in the log:\n" + mount.read_log())
    return int(re.findall(pat, mount.read_log())[-1])


class Probes(MountCase):
    def mount_with_probes(self, cache, opts=""):
        m = self.mount(name="mnt-" + cache.replace("/", "-"), cache=cache,
                       opts="metrics=127.0.0.1:0" + ("," + opts if opts else ""))
        return m, metrics_port(m)

    def test_ready_only_while_the_root_lists(self):
        # Graph answers every listing with 500: mounted, alive, not ready.
        self.emu.fault(route="children", kind="status", status=500)
        m, port = self.mount_with_probes("cache-unlistable", "read_timeout=3,poll_interval=0")
        self.assertEqual(probe(port, "/mounted")[0], 200)
        self.assertEqual(probe(port, "/healthz")[0], 200)
        # The first listing of the root fails within read_timeout.
        self.assertTrue(wait_until(lambda: "listing '/' failed" in m.read_log(), 30))
        status, body = probe(port, "/ready")
        self.assertEqual(status, 503, body)
        with self.assertRaises(OSError) as e:
            os.listdir(m.mountpoint)
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertEqual(probe(port, "/healthz")[0], 200)
        # The service mends: ready at the lister's next round.
        self.emu.clear_faults()
        self.assertTrue(wait_until(lambda: probe(port, "/ready")[0] == 200, 30))
        self.assertIn("tiny.csv", os.listdir(m.mountpoint))
        self.assertIn("spfs_ready 1\n", probe(port, "/metrics")[1])

    def test_entra_down_at_start_mounts_from_the_cache(self):
        m, port = self.mount_with_probes("cache-entra")
        self.assertTrue(wait_until(lambda: probe(port, "/ready")[0] == 200, 30))
        self.assertEqual(m.stop(), 0)
        self.mounts.remove(m)
        # A restart while Entra is down: no token at all, yet the startup
        # probe passes at once and the cached tree is ready and readable.
        self.emu.call("POST", "outage", {"down": True, "listeners": ["login"]})
        try:
            m, port = self.mount_with_probes("cache-entra")
            self.assertEqual(probe(port, "/mounted")[0], 200)
            self.assertTrue(wait_until(lambda: probe(port, "/ready")[0] == 200, 30),
                            probe(port, "/ready"))
            self.assertEqual(probe(port, "/healthz")[0], 200)
            self.assertIn("tiny.csv", os.listdir(m.mountpoint))
            self.assertIn("mounting from the cache", m.read_log())
            self.assertIn("spfs_mounted 1\n", probe(port, "/metrics")[1])
        finally:
            self.emu.call("POST", "outage", {"down": False, "listeners": ["login"]})

    def test_wedged_filesystem_fails_liveness(self):
        for tool in ("mkfs.ext4", "fsfreeze", "losetup"):
            if not shutil.which(tool):
                self.fail(f"{tool} is needed (util-linux, e2fsprogs)")
        img = os.path.join(self.tmp, "wedge.img")
        vol = os.path.join(self.tmp, "wedge")
        os.makedirs(vol, exist_ok=True)
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, vol], check=True)
        frozen = False
        try:
            m, port = self.mount_with_probes(
                "wedge/cache", "poll_interval=1,liveness_timeout=3")
            self.assertTrue(wait_until(lambda: probe(port, "/ready")[0] == 200, 30))
            self.assertEqual(probe(port, "/healthz")[0], 200)
            # Freeze the cache's filesystem; a remote change makes the
            # change poll write the metadata store, which blocks in D state
            # with the store's lock held: every metadata operation waits.
            subprocess.run(["fsfreeze", "-f", vol], check=True)
            frozen = True
            self.emu.mutate("create", "wedge-trigger.csv", text="x\n")
            self.assertTrue(wait_until(lambda: probe(port, "/healthz")[0] == 503, 60),
                            probe(port, "/healthz"))
            status, body = probe(port, "/healthz")
            self.assertIn("wedged", body)
            # The probe server itself stays responsive.
            self.assertEqual(probe(port, "/mounted")[0], 200)
            subprocess.run(["fsfreeze", "-u", vol], check=True)
            frozen = False
            self.assertTrue(wait_until(lambda: probe(port, "/healthz")[0] == 200, 30))
            self.assertTrue(wait_until(
                lambda: "wedge-trigger.csv" in os.listdir(m.mountpoint), 30))
        finally:
            if frozen:
                subprocess.run(["fsfreeze", "-u", vol], check=False)
            for mm in self.mounts:
                mm.stop()
            self.mounts = []
            subprocess.run(["umount", vol], check=False)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_probes: needs root (loop devices, fsfreeze)")
        sys.exit(77)
    unittest.main(verbosity=2)
