"""Real FUSE mounts of spfs against the emulator, for integration tests."""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

from emutest import EmulatorCase  # noqa: E402

BUILD = os.environ.get("SPFS_BUILDDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
SPFS = os.environ.get("SPFS_BIN", os.path.join(BUILD, "spfs"))


def webhook_env(emu, **override):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update({"AZURE_CLIENT_ID": emu["client_id"], "AZURE_TENANT_ID": emu["tenant_id"],
                "AZURE_AUTHORITY_HOST": emu["authority_host"],
                "AZURE_FEDERATED_TOKEN_FILE": emu["sa_token_file"]})
    env.update(override)
    return env


class Mount:
    """spfs SOURCE MOUNTPOINT in the foreground; unmounted on stop()."""

    def __init__(self, emu, mountpoint, cache_dir, source=None, opts="", log=None, env=None,
                 wrap=None):
        self.emu = emu
        self.mountpoint = mountpoint
        self.source = source or emu["site_url"]
        os.makedirs(mountpoint, exist_ok=True)
        o = f"graph_url={emu['graph_url']},cafile={emu['ca_file']},cache_dir={cache_dir}"
        if opts:
            o += "," + opts
        self.wrapped = bool(wrap)
        self.log_path = log or mountpoint + ".log"
        self.log = open(self.log_path, "ab")
        # env: webhook variables to override; wrap: a command to run spfs
        # under (valgrind), which also gets longer to mount.
        self.proc = subprocess.Popen((wrap or []) + [SPFS, "-f", self.source, mountpoint, "-o", o],
                                     env=webhook_env(emu, **(env or {})), stdout=self.log,
                                     stderr=self.log)
        deadline = time.time() + (120 if wrap else 30)
        while not os.path.ismount(mountpoint):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"spfs did not mount: {self.read_log()}")
            time.sleep(0.05)

    def read_log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount3", "-u", self.mountpoint], check=False,
                           capture_output=True)
        if self.proc.poll() is None:
            try:
                self.proc.wait(120 if self.wrapped else 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount3", "-uz", self.mountpoint], check=False)
        self.log.close()
        return self.proc.returncode


def tree(root, with_ino=False):
    """{relpath: (type, size, mtime[, ino])} for files and folders."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            kind = "d" if os.path.isdir(p) else "f"
            rec = (kind, st.st_size if kind == "f" else 0, int(st.st_mtime))
            out[os.path.relpath(p, root)] = rec + ((st.st_ino,) if with_ino else ())
    return out


def read_or_none(path):
    """The file's bytes, or None when it cannot be read (yet)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def wait_until(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class MountCase(EmulatorCase):
    """An emulator per class; mounts made with mount() are stopped after
    each test."""

    def setUp(self):
        self.emu.clear_faults()
        self.mounts = []

    def tearDown(self):
        for m in self.mounts:
            m.stop()

    def mount(self, name="mnt", cache="cache", **kw):
        m = Mount(self.emu, os.path.join(self.tmp, name), os.path.join(self.tmp, cache), **kw)
        self.mounts.append(m)
        return m
