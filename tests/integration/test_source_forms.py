#!/usr/bin/env python3
"""SOURCE as people copy it: the browser's address inside a folder (a library
view with id=), sharing links that carry their path (/:f:/r/...), sharing
links that are tokens (/:f:/s/..., resolved through Graph's shares
endpoint), and the refusals that say what to paste instead (links to files,
links Graph will not resolve for this identity)."""

import os
import subprocess
import sys
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import SPFS, MountCase, webhook_env  # noqa: E402


def listing(root):
    return sorted(os.listdir(root))


class SourceForms(MountCase):
    def truth(self, rel):
        return listing(os.path.join(self.emu["dataset_dir"], rel))

    def check(self, source):
        o = f"graph_url={self.emu['graph_url']},cafile={self.ca}"
        return subprocess.run([SPFS, "--check", source, "-o", o], env=webhook_env(self.emu),
                              capture_output=True, text=True, timeout=60)

    def test_folder_page_mounts_that_folder(self):
        folder = "/sites/Finance/Shared Documents/reports/2026"
        source = ("https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/Forms/"
                  "AllItems.aspx?id=" + urllib.parse.quote(folder, safe="")
                  + "&viewid=6f2b1f6e-0000-4000-8000-000000000000")
        m = self.mount(name="mnt-page", cache="cache-page", source=source, opts="poll_interval=0")
        self.assertEqual(listing(m.mountpoint), self.truth("reports/2026"))
        m.stop()
        r = self.check(source)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("folder: reports/2026", r.stdout)

    def test_path_sharing_link(self):
        source = ("https://contoso.sharepoint.com/:f:/r/sites/Finance/Shared%20Documents/"
                  "reports?csf=1&web=1&e=Xy12Ab")
        self.emu.reset()
        m = self.mount(name="mnt-r", cache="cache-r", source=source, opts="poll_interval=0")
        self.assertEqual(listing(m.mountpoint), self.truth("reports"))
        # Per-site calls only: it works with Sites.Selected.
        self.assertNotIn("shares", self.emu.counters())

    def test_token_sharing_link_through_shares(self):
        link = self.emu.call("POST", "share", {"path": "reports/2026"})["url"]
        self.emu.reset()
        m = self.mount(name="mnt-s", cache="cache-s", source=link, opts="poll_interval=0")
        self.assertEqual(listing(m.mountpoint), self.truth("reports/2026"))
        self.assertEqual(self.emu.counters().get("shares"), 1)
        with open(os.path.join(m.mountpoint, "q1.csv"), "rb") as f, \
                open(os.path.join(self.emu["dataset_dir"], "reports", "2026", "q1.csv"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        m.stop()
        r = self.check(link)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("sharing link: folder '2026'", r.stdout)

    def test_links_refused_with_what_to_paste(self):
        # A link to a file: refused before any request.
        xlsx = self.emu.call("POST", "share", {"path": "reports/summary.xlsx"})["url"]
        r = self.check(xlsx)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("sharing link to a file (:x:)", r.stdout)
        mp = os.path.join(self.tmp, "mnt-file-link")
        os.makedirs(mp, exist_ok=True)
        r = subprocess.run([SPFS, "-f", xlsx, mp], env=webhook_env(self.emu),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("paste the link of the folder that holds the file", r.stderr)
        self.assertFalse(os.path.ismount(mp))
        # An identity that may not use the shares endpoint (Sites.Selected).
        link = self.emu.call("POST", "share", {"path": "reports"})["url"]
        self.emu.fault(route="shares", kind="status", status=403)
        try:
            r = self.check(link)
        finally:
            self.emu.clear_faults()
        self.assertEqual(r.returncode, 1)
        self.assertIn("could not be resolved (access denied)", r.stdout)
        self.assertIn("Forms/AllItems.aspx?id=", r.stdout)
        # A link that no longer exists.
        r = self.check("https://contoso.sharepoint.com/:f:/s/Finance/EgoneGoneGone?e=1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("could not be resolved (not found)", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
