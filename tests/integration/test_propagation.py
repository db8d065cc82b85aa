#!/usr/bin/env python3
"""The two Kubernetes patterns rest on mount propagation; this reproduces
them with Linux mount namespaces. A shared directory stands for the pod's
emptyDir (or the node's hostPath); spfs mounts into it from a namespace of
its own (mountPropagation: Bidirectional); an "app" namespace made slave
(HostToContainer) must see the files, see unmounts, get an error (not a
hang) when spfs is killed, and see the files again after a restart."""

import json
import select
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import SPFS, MountCase, wait_until, webhook_env  # noqa: E402

# Runs in the app's namespace: makes the shared tree a slave, then answers
# one JSON command per line.
AGENT = r"""
import json, os, subprocess, sys
subprocess.run(["mount", "--make-rslave", sys.argv[1]], check=True)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    op, path = json.loads(line)
    try:
        if op == "ismount":
            out = os.path.ismount(path)
        elif op == "listdir":
            out = sorted(os.listdir(path))
        elif op == "read":
            with open(path, "rb") as f:
                out = f.read().hex()
        print(json.dumps({"ok": out}), flush=True)
    except OSError as e:
        print(json.dumps({"errno": e.errno}), flush=True)
"""


class Propagation(MountCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("mount namespaces need root")
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.shared = os.path.join(self.tmp, "shared")
        self.lib = os.path.join(self.shared, "library")
        os.makedirs(self.lib, exist_ok=True)
        # The emptyDir: a mount point of its own, in a shared peer group.
        subprocess.run(["mount", "--bind", self.shared, self.shared], check=True)
        subprocess.run(["mount", "--make-shared", self.shared], check=True)
        self.procs = []
        self.agent = subprocess.Popen(
            ["unshare", "-m", "--propagation", "unchanged", sys.executable, "-c", AGENT,
             self.shared], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(self.agent)
        self.assertEqual(json.loads(self.agent.stdout.readline()), {"ready": True})

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.agent.stdin.close()
        self.agent.stdout.close()
        subprocess.run(["umount", "-l", self.lib], capture_output=True)
        subprocess.run(["umount", "-l", self.shared], capture_output=True)
        super().tearDown()

    def app(self, op, path, timeout=10):
        """Asks the app namespace; a hang fails the test instead of it."""
        self.agent.stdin.write(json.dumps([op, path]) + "\n")
        self.agent.stdin.flush()

        ready, _, _ = select.select([self.agent.stdout], [], [], timeout)
        self.assertTrue(ready, f"the app namespace hung on {op} {path}")
        return json.loads(self.agent.stdout.readline())

    def start_spfs(self, cache):
        o = (f"graph_url={self.emu['graph_url']},cafile={self.emu['ca_file']},"
             f"cache_dir={os.path.join(self.tmp, cache)},poll_interval=0")
        log = open(os.path.join(self.tmp, cache + ".log"), "ab")
        p = subprocess.Popen(["unshare", "-m", "--propagation", "unchanged", SPFS, "-f",
                              self.emu["site_url"], self.lib, "-o", o],
                             env=webhook_env(self.emu), stdout=log, stderr=log)
        log.close()
        self.procs.append(p)
        self.assertTrue(wait_until(lambda: os.path.ismount(self.lib) or p.poll() is not None, 30))
        self.assertIsNone(p.poll(), "spfs exited")
        return p

    def test_sidecar_and_node_patterns(self):
        with open(os.path.join(self.emu["dataset_dir"], "tiny.csv"), "rb") as f:
            truth = f.read()
        self.assertEqual(self.app("ismount", self.lib), {"ok": False})

        # spfs mounts in its namespace: the host and the app both see it.
        spfs = self.start_spfs("cache-1")
        self.assertTrue(os.path.ismount(self.lib))
        self.assertTrue(wait_until(lambda: self.app("ismount", self.lib) == {"ok": True}, 10))
        self.assertIn("tiny.csv", self.app("listdir", self.lib)["ok"])
        self.assertEqual(bytes.fromhex(self.app("read", os.path.join(self.lib, "tiny.csv"))["ok"]),
                         truth)

        # A clean stop (SIGTERM, as the kubelet sends) unmounts everywhere.
        spfs.terminate()
        self.assertEqual(spfs.wait(15), 0)
        self.assertTrue(wait_until(lambda: self.app("ismount", self.lib) == {"ok": False}, 10))
        self.assertFalse(os.path.ismount(self.lib))

        # Mounted again: seen again.
        spfs = self.start_spfs("cache-1")
        self.assertTrue(wait_until(lambda: self.app("ismount", self.lib) == {"ok": True}, 10))

        # Killed: the app gets an error at once (ENOTCONN), not a hang.
        spfs.kill()
        spfs.wait()
        r = self.app("listdir", self.lib, timeout=10)
        self.assertIn("errno", r)
        r = self.app("read", os.path.join(self.lib, "tiny.csv"), timeout=10)
        self.assertIn("errno", r)

        # Recovery, as the node DaemonSet's start does: lazily unmount the
        # dead mount, mount again; the app sees the files without a restart.
        subprocess.run(["fusermount3", "-uz", self.lib], check=True)
        spfs = self.start_spfs("cache-1")
        self.assertTrue(wait_until(lambda: "ok" in self.app("listdir", self.lib), 10))
        self.assertEqual(bytes.fromhex(self.app("read", os.path.join(self.lib, "tiny.csv"))["ok"]),
                         truth)
        spfs.terminate()
        spfs.wait(15)


if __name__ == "__main__":
    unittest.main(verbosity=2)
