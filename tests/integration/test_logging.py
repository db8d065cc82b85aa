#!/usr/bin/env python3
"""Where a daemonized spfs (fstab, `mount -t fuse.spfs`: no -f) logs: its
stderr becomes /dev/null, so lines after detaching go to syslog (the
journal's socket, /dev/log), or all of them to -o log_file=. Each test
makes a listing fail after the mount, the kind of error a user would
otherwise never see."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import SPFS, MountCase, wait_until, webhook_env  # noqa: E402


def pid_gone(pid):
    return not os.path.exists(f"/proc/{pid}")


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


class Logging(MountCase):
    def opts(self, cache, extra=""):
        o = (f"graph_url={self.emu['graph_url']},cafile={self.emu['ca_file']},"
             f"cache_dir={os.path.join(self.tmp, cache)},poll_interval=0")
        return o + ("," + extra if extra else "")

    def test_log_file_in_the_background(self):
        mnt = os.path.join(self.tmp, "mnt-logfile")
        log = os.path.join(self.tmp, "spfs.log")
        os.makedirs(mnt, exist_ok=True)
        # Without -f: the command returns once mounted, the daemon stays.
        r = subprocess.run([SPFS, self.emu["site_url"], mnt, "-o",
                            self.opts("cache-logfile", f"log_file={log}")],
                           env=webhook_env(self.emu), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")  # every line went to the file
        try:
            self.assertTrue(os.path.ismount(mnt))
            # The root listed first (the probe lister does it), then a folder's
            # listing fails.
            self.assertTrue(wait_until(lambda: "root lists" in read(log), 30), read(log))
            self.emu.fault(route="children", kind="status", status=404)
            with self.assertRaises(OSError):
                os.listdir(os.path.join(mnt, "reports"))
            self.emu.clear_faults()
            self.assertTrue(wait_until(lambda: "listing 'reports' failed" in read(log), 10),
                            read(log))
            # The daemon's pid (the command's own process has exited).
            pid = int(re.search(r"spfs\[(\d+)\] warn: listing 'reports' failed",
                                read(log)).group(1))
        finally:
            subprocess.run(["fusermount3", "-u", mnt], check=False)
        self.assertTrue(wait_until(lambda: pid_gone(pid), 30))
        text = read(log)
        self.assertIn("credential: workload identity", text)
        self.assertIn("unmounting", text)
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o600)

    def test_syslog_once_detached(self):
        """spfs in a mount namespace whose /dev/log is a socket of ours: the
        daemon's lines after detaching arrive there, priority and pid
        included; those before it are on the mount command's stderr."""
        sock_path = os.path.join(self.tmp, "log.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        srv.bind(sock_path)
        srv.settimeout(0.5)
        got = []
        done = threading.Event()

        def collect():
            while not done.is_set():
                try:
                    got.append(srv.recv(65536).decode("utf-8", "replace"))
                except socket.timeout:
                    pass

        reader = threading.Thread(target=collect)
        reader.start()
        mnt = os.path.join(self.tmp, "mnt-syslog")
        dev = os.path.join(self.tmp, "dev-real")
        os.makedirs(mnt, exist_ok=True)
        os.makedirs(dev, exist_ok=True)
        # A private /dev with the real fuse and null devices and our socket
        # as /dev/log; spfs mounts, a listing fails, then it is unmounted.
        script = f"""
set -e
mount --bind /dev {dev}
mount -t tmpfs tmpfs /dev
for d in fuse null urandom random; do touch /dev/$d; mount --bind {dev}/$d /dev/$d; done
touch /dev/log; mount --bind {sock_path} /dev/log
"$SPFS" "$SOURCE" {mnt} -o "$OPTS"
ls {mnt}/reports >/dev/null 2>&1 && exit 3
fusermount3 -u {mnt}
"""
        self.emu.fault(route="children", kind="status", status=404)
        env = webhook_env(self.emu, SPFS=SPFS, SOURCE=self.emu["site_url"],
                          OPTS=self.opts("cache-syslog", "log_format=text"))
        try:
            r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # Before detaching: the terminal.
            self.assertIn("credential: workload identity", r.stderr)
            self.assertTrue(wait_until(lambda: any("unmounting" in g for g in got), 30), got)
        finally:
            self.emu.clear_faults()
            done.set()
            reader.join()
            srv.close()
        text = "\n".join(got)
        # <28> = daemon.warning, <30> = daemon.info; "spfs[PID]: message".
        self.assertRegex(text, r"<28>.*spfs\[\d+\]: listing '[^']*' failed")
        self.assertRegex(text, r"<30>.*spfs\[\d+\]: unmounting")
        pid = int(re.search(r"spfs\[(\d+)\]", text).group(1))
        self.assertTrue(wait_until(lambda: pid_gone(pid), 30))


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_logging: needs root (mount namespaces)")
        sys.exit(77)
    unittest.main(verbosity=2)
