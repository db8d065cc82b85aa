#!/usr/bin/env python3
"""Token soak against a real mount: the kubelet stand-in rotates the
service-account token every 30 s (each one valid for 90 s, so a stale file
read would be refused), access tokens live 60 s, download URLs 20 s, and
readers loop over files with the cache off (a working set beyond the
memory budget, so reads keep going to the service)
while files are created remotely and the change poll runs every 2 s.

Zero failed or wrong reads, no 401 from Graph, every token exchange accepted,
and about one token request per 30 s (refresh at half-life: no storm).

SPFS_SOAK_SECONDS sets the length: 180 in `make check`, 3600 in
`make check-long`."""

import hashlib
import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import MountCase  # noqa: E402

EMU_DIR = os.path.join(os.path.dirname(HERE), "emulator")
SECONDS = float(os.environ.get("SPFS_SOAK_SECONDS", "180"))
READERS = 4
FILES = ["README.txt", "tiny.csv", "reports/2026/q1.csv", "reports/2026/q3.csv",
         "reports/big-export.csv", "finance/budget 2026.xlsx", "large/big.bin",
         "names/日本語/中身.csv"]


def digest(path, drop=False):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
        if drop:  # the next read goes to spfs, not the kernel's page cache
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return h.hexdigest()


class TokenSoak(MountCase):
    start_args = ["--profile", "test", "--many", "5", "--large-size", str(32 << 20)]

    def test_rotating_tokens_under_steady_reads(self):
        self.emu.call("POST", "token-lifetime", {"seconds": 60})
        self.emu.call("POST", "download-urls", {"lifetime": 20})
        token_file = os.path.join(self.tmp, "projected-token")
        kubelet = subprocess.Popen([sys.executable, os.path.join(EMU_DIR, "kubelet.py"),
                                    "--state", os.path.join(self.state_dir, "state.json"),
                                    "--out", token_file, "--rotate", "30", "--ttl", "90"])
        self.addCleanup(kubelet.wait, 10)
        self.addCleanup(kubelet.terminate)
        deadline = time.time() + 10
        while not os.path.exists(token_file) and time.time() < deadline:
            time.sleep(0.05)
        self.emu.reset()
        m = self.mount(cache="cache-soak", opts="cache=off,poll_interval=2,chunk_size=1M",
                       env={"AZURE_FEDERATED_TOKEN_FILE": token_file})
        want = {rel: digest(os.path.join(self.emu["dataset_dir"], rel)) for rel in FILES}
        stop = threading.Event()
        lock = threading.Lock()
        failures, reads = [], [0]

        def reader(k):
            i = k
            while not stop.is_set():
                rel = FILES[i % len(FILES)]
                i += 1
                try:
                    got = digest(os.path.join(m.mountpoint, rel), drop=True)
                    os.listdir(os.path.join(m.mountpoint, os.path.dirname(rel) or "."))
                except OSError as e:
                    got = f"error {e.errno} {e.strerror}"
                with lock:
                    reads[0] += 1
                    if got != want[rel]:
                        failures.append((round(time.time() - t0, 1), rel, got))
                stop.wait(0.2)  # steady, not flat out: make check runs beside

        t0 = time.time()
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(READERS)]
        for t in threads:
            t.start()
        created = 0
        try:
            while time.time() - t0 < SECONDS:
                time.sleep(min(10, max(0.0, SECONDS - (time.time() - t0))))
                created += 1
                rel = f"reports/soak-{created:04d}.csv"
                self.emu.mutate("create", rel, text=f"n,{created}\n")
                # The change poll brings it (with the access token of the
                # moment); its bytes read right.
                path = os.path.join(m.mountpoint, rel)
                for _ in range(100):
                    if os.path.exists(path):
                        break
                    time.sleep(0.1)
                with open(path, "rb") as f:
                    if f.read() != f"n,{created}\n".encode():
                        failures.append((round(time.time() - t0, 1), rel, "wrong bytes"))
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        took = time.time() - t0
        self.assertEqual(failures[:10], [], f"{len(failures)} failed reads")
        self.assertIsNone(m.proc.poll(), "spfs exited")

        tokens = self.emu.token_requests()
        bad = [t for t in tokens if t.get("result") != "ok"]
        self.assertEqual(bad, [], "refused token exchanges")
        graph = [e for e in self.emu.requests()
                 if e["route"] not in ("token", "imds", "oidc", "openid", "download")]
        self.assertEqual([e for e in graph if e["status"] == 401], [], "Graph said 401")
        # One exchange at mount, then one per half-life (30 s).
        expected = 1 + took / 30
        self.assertTrue(expected - 2 <= len(tokens) <= expected + 2,
                        f"{len(tokens)} token requests in {took:.0f} s, expected about "
                        f"{expected:.0f}")
        # The file was re-read as kubelet rotated it: several tokens presented.
        if took > 70:
            self.assertGreater(len({t.get("assertion_jti") for t in tokens}), 1)
        self.assertGreater(reads[0], took)  # the readers really ran
        print(f"token soak: {took:.0f} s, {reads[0]} reads, {created} remote creates, "
              f"{len(tokens)} token requests, {len(graph)} Graph requests, "
              f"{len(self.emu.requests('download'))} downloads", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
