#!/usr/bin/env python3
"""Stopping during an outage: `fusermount3 -u` (a preStop hook) and SIGTERM
(the kubelet) must end the daemon promptly, although its change poll, its
probe lister and a reader are all waiting on a Graph that does not answer.
Before, each waited out its retries: the daemon outlived the unmount by
most of read_timeout. Bounds here are a fraction of read_timeout (120 s),
so a slow machine cannot turn them into a false failure."""

import os
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import MountCase, wait_until  # noqa: E402

READ_TIMEOUT = 120
PROMPT = 20  # seconds; a sixth of read_timeout


class Shutdown(MountCase):
    def outage(self, down):
        self.emu.call("POST", "outage", {"down": down})

    def test_unmount_during_an_outage_is_prompt(self):
        m = self.mount(cache="cache-umount", opts=f"poll_interval=1,read_timeout={READ_TIMEOUT}")
        self.assertIn("tiny.csv", os.listdir(m.mountpoint))
        self.outage(True)
        try:
            # The change poll and the probe lister are now retrying.
            time.sleep(3)
            t0 = time.time()
            subprocess.run(["fusermount3", "-u", m.mountpoint], check=True)
            m.proc.wait(READ_TIMEOUT + 30)
            took = time.time() - t0
        finally:
            self.outage(False)
        self.assertLess(took, PROMPT, f"spfs outlived its unmount by {took:.1f} s")
        self.assertEqual(m.proc.returncode, 0, m.read_log())
        self.assertFalse(os.path.ismount(m.mountpoint))

    def test_sigterm_with_a_read_in_flight(self):
        m = self.mount(cache="cache-term", opts=f"poll_interval=1,read_timeout={READ_TIMEOUT}")
        path = os.path.join(m.mountpoint, "reports", "2026", "q2.csv")
        os.listdir(os.path.dirname(path))  # listed; its bytes are not cached
        self.outage(True)
        outcome = {}

        def read():
            try:
                with open(path, "rb") as f:
                    outcome["data"] = f.read()
            except OSError as e:
                outcome["errno"] = e.errno

        reader = threading.Thread(target=read)
        try:
            reader.start()
            time.sleep(3)  # the read is retrying a refused download
            self.assertTrue(reader.is_alive(), outcome)
            t0 = time.time()
            m.proc.send_signal(signal.SIGTERM)
            m.proc.wait(READ_TIMEOUT + 30)
            took = time.time() - t0
            reader.join(30)
        finally:
            self.outage(False)
        self.assertLess(took, PROMPT, f"spfs took {took:.1f} s to stop after SIGTERM")
        self.assertFalse(reader.is_alive())
        self.assertIn("errno", outcome)  # an error, never bytes it did not have
        self.assertTrue(wait_until(lambda: not os.path.ismount(m.mountpoint), 10))


if __name__ == "__main__":
    unittest.main(verbosity=2)
