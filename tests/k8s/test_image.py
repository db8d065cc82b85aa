#!/usr/bin/env python3
"""k8s/Dockerfile, built and run without a container engine's daemon: a
Debian 12 base made by mmdebstrap from the apt mirror (what debian:12-slim
is), both stages built by buildah with chroot isolation from the source tree
(so .dockerignore applies), then, inside the runtime image's root file
system, `spfs --version` and a real mount of the emulator's library, read
byte for byte. Slow (minutes: packages, a compile): `make check-long` runs
it; SPFS_IMAGE_BASE=FILE.tar reuses a base made earlier."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

from emutest import EmulatorCase  # noqa: E402

SRC = os.environ.get("SPFS_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD = os.environ.get("SPFS_BUILDDIR", SRC)
MIRRORS = ["deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main"]
BASE_TAG = "localhost/spfs-test-debian:12"
IMAGE_TAG = "localhost/spfs-test:latest"


class Image(EmulatorCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("building an image root file system needs root")
        for tool in ("mmdebstrap", "buildah"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is needed (scripts/install-deps installs it)")
        super().setUpClass()
        # Storage of our own (vfs: no overlay mounts, nothing shared with
        # other users of buildah on the machine), removed afterwards.
        cls.work = tempfile.mkdtemp(prefix="spfs-image-")
        cls.buildah = ["buildah", "--root", os.path.join(cls.work, "storage"),
                       "--runroot", os.path.join(cls.work, "run"), "--storage-driver", "vfs"]

    @classmethod
    def tearDownClass(cls):
        for ctr in getattr(cls, "containers", []):
            subprocess.run(cls.buildah + ["rm", ctr], capture_output=True)
        subprocess.run(cls.buildah + ["rmi", "--all", "--force"], capture_output=True)
        shutil.rmtree(cls.work, ignore_errors=True)
        super().tearDownClass()

    def run_logged(self, name, cmd, **kw):
        log = os.path.join(self.work, name + ".log")
        with open(log, "wb") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw)
        if r.returncode != 0:
            with open(log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-6000:]
            self.fail(f"{' '.join(cmd[:4])}... failed ({r.returncode}):\n{tail}")

    def test_build_then_mount_inside_the_image(self):
        type(self).containers = []
        # The base: Debian 12 minbase, as debian:12-slim is.
        base = os.environ.get("SPFS_IMAGE_BASE") or os.path.join(self.work, "base.tar")
        if not os.path.exists(base):
            self.run_logged("mmdebstrap", ["mmdebstrap", "--variant=minbase", "--mode=root",
                                           "bookworm", base] + MIRRORS)
        ctr = subprocess.run(self.buildah + ["from", "scratch"], check=True, capture_output=True,
                             text=True).stdout.strip()
        self.containers.append(ctr)
        self.run_logged("base", self.buildah + ["add", ctr, base, "/"])
        self.run_logged("commit", self.buildah + ["commit", "-q", ctr, BASE_TAG])

        # Both stages, exactly as docker build runs them.
        self.run_logged("bud", self.buildah + [
            "bud", "--isolation", "chroot", "--pull=never",
            "--build-arg", f"DEBIAN_IMAGE={BASE_TAG}",
            "-f", os.path.join(SRC, "k8s", "Dockerfile"), "-t", IMAGE_TAG, SRC])
        info = json.loads(subprocess.run(self.buildah + ["inspect", "--type", "image", IMAGE_TAG],
                                         check=True, capture_output=True, text=True).stdout)
        self.assertEqual(info["OCIv1"]["config"]["Entrypoint"], ["tini", "--", "spfs"])

        ctr = subprocess.run(self.buildah + ["from", IMAGE_TAG], check=True, capture_output=True,
                             text=True).stdout.strip()
        self.containers.append(ctr)
        root = subprocess.run(self.buildah + ["mount", ctr], check=True, capture_output=True,
                              text=True).stdout.strip()
        # Only the runtime stage's files: no sources, no compiler.
        for absent in ("src", "usr/bin/gcc", "usr/bin/python3"):
            self.assertFalse(os.path.exists(os.path.join(root, absent)), absent)
        for tool in ("usr/bin/spfs", "usr/bin/tini", "usr/bin/fusermount3"):
            self.assertTrue(os.path.exists(os.path.join(root, tool)), tool)

        # Inside the image: the identity as the webhook injects it, the
        # emulator's CA as the trust store, a mount, a read, an unmount.
        # Files go in through the image's /tmp (a real directory: /var/run
        # is a symlink to /run, which outside the chroot is the host's).
        tmp = os.path.join(root, "tmp")
        self.assertFalse(os.path.islink(tmp))
        shutil.copy(self.emu["sa_token_file"], os.path.join(tmp, "azure-identity-token"))
        shutil.copy(self.emu["ca_file"], os.path.join(tmp, "emulator-ca.crt"))
        with open(os.path.join(self.emu["dataset_dir"], "tiny.csv"), "rb") as f:
            truth = f.read()
        opts = (f"graph_url={self.emu['graph_url']},cafile=/tmp/emulator-ca.crt,"
                "cache_dir=/var/cache/spfs,poll_interval=0,allow_other")
        inside = f"""
set -e
spfs --version
mkdir -p /var/run/secrets/azure/tokens
mv /tmp/azure-identity-token /var/run/secrets/azure/tokens/
mkdir -p /mnt/sharepoint/library && chmod 000 /mnt/sharepoint/library
tini -s -- spfs -f "{self.emu['site_url']}" /mnt/sharepoint/library -o "{opts}" \
    >/tmp/spfs.log 2>&1 &
i=0
until grep -q " /mnt/sharepoint/library fuse.spfs " /proc/self/mounts; do
    i=$((i + 1)); [ $i -lt 300 ] || {{ cat /tmp/spfs.log; exit 1; }}; sleep 0.1
done
echo "listing: $(ls /mnt/sharepoint/library | tr '\\n' ' ')"
cat /mnt/sharepoint/library/tiny.csv > /tmp/tiny.out
fusermount3 -u /mnt/sharepoint/library
wait
"""
        quoted = "'" + inside.replace("'", "'\\''") + "'"
        script = f"""
set -e
mount --make-private /
mount --rbind /dev {root}/dev
mount -t proc proc {root}/proc
exec chroot {root} /bin/sh -c {quoted}
"""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "AZURE_CLIENT_ID": self.emu["client_id"], "AZURE_TENANT_ID": self.emu["tenant_id"],
               "AZURE_AUTHORITY_HOST": self.emu["authority_host"],
               "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"}
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("spfs 0.1.0", r.stdout)
        self.assertIn("tiny.csv", r.stdout)
        with open(os.path.join(root, "tmp/tiny.out"), "rb") as f:
            self.assertEqual(f.read(), truth)
        print(f"image: built and mounted; {r.stdout.strip().splitlines()[-1]}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
