#!/usr/bin/env python3
"""The two Kubernetes patterns rest on mount propagation; this reproduces
them with Linux mount namespaces, first in the abstract, then (ManifestLayout)
with the rendered overlays' own commands, paths and volumes. A shared directory stands for the pod's
emptyDir (or the node's hostPath); spfs mounts into it from a namespace of
its own (mountPropagation: Bidirectional); an "app" namespace made slave
(HostToContainer) must see the files, see unmounts, get an error (not a
hang) when spfs is killed, and see the files again after a restart."""

import errno
import json
import re
import select
import os
import shutil
import signal
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


# ---- the manifests' exact layout ---------------------------------------------
#
# Each container of a rendered overlay becomes a PID and mount namespace set
# up as runc sets one up: its volumes bound (rbind) at their mountPaths,
# Bidirectional ones shared with the host's volume directory, HostToContainer
# ones slaves, readOnly ones read-only; then its command and args run as the
# manifest says (tini as PID 1 for spfs), with the ConfigMap's settings.
# Only the emulator's addresses are added to SPFS_OPTIONS, and the metrics
# port becomes a free one.

SRC = os.environ.get("SPFS_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-yaml

# In a container's namespace: the checks an app would make, as its user.
APP_AGENT = r"""
import json, os, sys
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    op, path = json.loads(line)
    try:
        if op == "stat":
            st = os.stat(path)
            out = [st.st_mode & 0o7777, st.st_uid]
        elif op == "listdir":
            out = sorted(os.listdir(path))
        elif op == "read":
            with open(path, "rb") as f:
                out = f.read().hex()
        print(json.dumps({"ok": out}), flush=True)
    except OSError as e:
        print(json.dumps({"errno": e.errno}), flush=True)
"""


def read_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def render(overlay):
    """The overlay as kubectl kustomize renders it, as Python objects."""
    out = subprocess.run(["kubectl", "kustomize", os.path.join(SRC, "k8s", "overlays", overlay)],
                         check=True, capture_output=True, text=True).stdout
    js = subprocess.run([SYSTEM_PYTHON, "-c", "import json, sys, yaml; "
                         "print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"],
                        input=out, check=True, capture_output=True, text=True).stdout
    return json.loads(js)


def settings_env():
    env = {}
    with open(os.path.join(SRC, "k8s", "base", "settings.env"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    return env


def container_script(volumes):
    """Shell that sets up a container's mounts. volumes: (host dir, path,
    propagation, read-only) in the manifest's order."""
    # The root mount private (not recursively: the volumes' shared
    # directories must stay peers), so nothing mounted here reaches the host.
    lines = ["set -e", "mount --make-private /", "mount -t proc proc /proc"]
    covered = set()
    for host, path, prop, ro in volumes:
        # A path that does not exist here gets a tmpfs on its deepest
        # existing ancestor (in this namespace only), as a container's own
        # root file system would have it.
        anc = path
        while not os.path.isdir(anc):
            anc = os.path.dirname(anc)
        if anc != path and anc not in covered and anc != "/":
            lines.append(f"mount -t tmpfs tmpfs {anc}")
            covered.add(anc)
        lines.append(f"mkdir -p {path}")
        lines.append(f"mount --rbind {host} {path}")
        if prop == "HostToContainer":
            lines.append(f"mount --make-rslave {path}")
        elif prop == "Bidirectional":
            lines.append(f"mount --make-rshared {path}")
        if ro:
            lines.append(f"mount -o remount,bind,ro {path}")
    return "\n".join(lines) + "\n"


class ManifestLayout(MountCase):
    """The overlays' pods, started, killed and restarted as the kubelet would."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("namespaces need root")
        for tool in ("kubectl", "tini", "setpriv"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is needed (scripts/install-deps)")
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.procs = []
        self.host_mounts = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for m in reversed(self.host_mounts):
            subprocess.run(["umount", "-R", "-l", m], capture_output=True)
        super().tearDown()

    def volume_dir(self, name, shared):
        """A host directory for a volume, a shared mount of its own (the
        kubelet's pod directories are under a shared mount)."""
        d = os.path.join(self.tmp, "volumes", name)
        os.makedirs(d, exist_ok=True)
        if shared:
            subprocess.run(["mount", "--bind", d, d], check=True)
            subprocess.run(["mount", "--make-shared", d], check=True)
            self.host_mounts.append(d)
        return d

    def start(self, container, volumes, env, as_user=None, agent=False, log=None):
        """Runs a container's command (or the app agent) in new namespaces."""
        script = container_script(volumes)
        if agent:
            cmd = [SYSTEM_PYTHON, "-c", APP_AGENT]
        else:
            cmd = container.get("command", []) + container.get("args", [])
        if as_user is not None:
            cmd = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"] + cmd
        script += 'exec "$@"\n'
        out = open(log, "ab") if log else subprocess.DEVNULL
        p = subprocess.Popen(["unshare", "-m", "-p", "-f", "--propagation", "unchanged",
                              "sh", "-c", script, "container"] + cmd,
                             env=env, stdin=subprocess.PIPE if agent else subprocess.DEVNULL,
                             stdout=subprocess.PIPE if agent else out,
                             stderr=out if log else None, text=agent)
        if log:
            out.close()
        self.procs.append(p)
        if agent:
            self.assertEqual(json.loads(p.stdout.readline()), {"ready": True})
        return p

    def ask(self, agent, op, path, timeout=10):
        agent.stdin.write(json.dumps([op, path]) + "\n")
        agent.stdin.flush()
        ready, _, _ = select.select([agent.stdout], [], [], timeout)
        self.assertTrue(ready, f"the app hung on {op} {path}")
        return json.loads(agent.stdout.readline())

    @staticmethod
    def init_pid(p):
        """The container's PID 1 (unshare -f's child)."""
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            return int(f.read().split()[0])

    def spfs_env(self, container, cache_key):
        env = webhook_env(self.emu)
        env.update(container.get("env_from_settings", {}))
        s = settings_env()
        opts = re.sub(r"metrics=[^,]*", "metrics=127.0.0.1:0", s["SPFS_OPTIONS"])
        env["SPFS_SOURCE"] = self.emu["site_url"]
        env["SPFS_OPTIONS"] = (f"{opts},graph_url={self.emu['graph_url']},"
                               f"cafile={self.emu['ca_file']},poll_interval=0")
        env["PATH"] = os.path.dirname(os.path.abspath(SPFS)) + ":" + env.get("PATH", "/usr/bin:/bin")
        return env

    def run_overlay(self, overlay, kind, app_name, app_user):
        objs = render(overlay)
        spfs_pod = next(o for o in objs if o["kind"] == kind and any(
            c["name"] == "spfs" for c in o["spec"]["template"]["spec"].get("initContainers", [])
            + o["spec"]["template"]["spec"]["containers"]))["spec"]["template"]["spec"]
        app_pod = next(o["spec"]["template"]["spec"] for o in objs if o["kind"] == "Deployment"
                       and any(c["name"] == app_name for c in o["spec"]["template"]["spec"]["containers"]))
        spfs = next(c for c in spfs_pod.get("initContainers", []) + spfs_pod["containers"]
                    if c["name"] == "spfs")
        app = next(c for c in app_pod["containers"] if c["name"] == app_name)

        # Volumes: emptyDir or hostPath, each a host directory.
        def host_dirs(pod):
            out = {}
            for v in pod["volumes"]:
                key = v.get("hostPath", {}).get("path") or f"{overlay}-{v['name']}"
                out[v["name"]] = key
            return out
        dirs = {}

        def mounts_of(c, pod):
            names = host_dirs(pod)
            vols = []
            for m in c["volumeMounts"]:
                key = names[m["name"]]
                if key not in dirs:
                    dirs[key] = self.volume_dir(key.strip("/").replace("/", "_"),
                                                shared=m.get("mountPropagation") == "Bidirectional")
                vols.append((dirs[key], m["mountPath"], m.get("mountPropagation"),
                             m.get("readOnly", False)))
            return vols
        spfs_vols = mounts_of(spfs, spfs_pod)
        app_vols = mounts_of(app, app_pod)
        bidi = next(v for v in spfs_vols if v[2] == "Bidirectional")
        volume_root = bidi[0]
        target = spfs["lifecycle"]["preStop"]["exec"]["command"][-1]
        rel = os.path.relpath(target, bidi[1])  # "library"
        app_root = next(v[1] for v in app_vols if v[0] == volume_root)
        app_lib = os.path.join(app_root, rel)
        with open(os.path.join(self.emu["dataset_dir"], "tiny.csv"), "rb") as f:
            truth = f.read()
        log = os.path.join(self.tmp, f"{overlay}-spfs.log")

        def start_spfs():
            p = self.start(spfs, spfs_vols, self.spfs_env(spfs, overlay), log=log)
            self.assertTrue(wait_until(lambda: os.path.ismount(os.path.join(volume_root, rel))
                                       or p.poll() is not None, 30), read_file(log))
            self.assertIsNone(p.poll(), read_file(log))
            return p

        # The app starts first on a node (or its sidecar is late): the bare
        # mountpoint does not exist yet; once spfs has run it, it is 000.
        spfs_c = start_spfs()
        self.assertEqual(os.stat(os.path.join(volume_root, rel)).st_mode & 0o777, 0o555)
        agent = self.start(app, app_vols, webhook_env(self.emu), as_user=app_user, agent=True)
        self.assertIn("tiny.csv", self.ask(agent, "listdir", app_lib)["ok"])
        self.assertEqual(bytes.fromhex(self.ask(agent, "read", os.path.join(app_lib, "tiny.csv"))["ok"]),
                         truth)

        # spfs dies (OOM kill, crash): the whole container at once.
        os.kill(self.init_pid(spfs_c), signal.SIGKILL)
        spfs_c.wait(30)
        # The volume's root stays a plain directory: the kubelet's stat and
        # runc's bind of it into a restarted container work...
        os.stat(volume_root)
        self.assertIn(rel, os.listdir(volume_root))
        # ...while the app gets an error at once (not a hang, not an empty
        # library) from the dead mount below it.
        self.assertIn("errno", self.ask(agent, "listdir", app_lib))

        # The kubelet restarts the container: the same command clears the
        # dead mount and mounts again; the app reads again, no restart.
        spfs_c = start_spfs()
        self.assertTrue(wait_until(lambda: "ok" in self.ask(agent, "listdir", app_lib), 10))
        self.assertEqual(bytes.fromhex(self.ask(agent, "read", os.path.join(app_lib, "tiny.csv"))["ok"]),
                         truth)

        # preStop unmounts; then the bare mountpoint is mode 000: the app
        # gets EACCES, never an empty library.
        stop = self.start({"command": spfs["lifecycle"]["preStop"]["exec"]["command"]},
                          spfs_vols, self.spfs_env(spfs, overlay))
        self.assertEqual(stop.wait(30), 0)
        self.assertEqual(spfs_c.wait(30), 0, read_file(log))
        self.assertTrue(wait_until(lambda: not os.path.ismount(os.path.join(volume_root, rel)), 10))
        self.assertEqual(os.stat(os.path.join(volume_root, rel)).st_mode & 0o777, 0)
        self.assertEqual(self.ask(agent, "listdir", app_lib), {"errno": errno.EACCES})

        # The app's own command (sh as PID 1) ends on SIGTERM, well before
        # its 300 s sleep and the 30 s grace period.
        app_c = self.start(app, app_vols, webhook_env(self.emu), as_user=app_user)
        time.sleep(1)
        t0 = time.time()
        os.kill(self.init_pid(app_c), signal.SIGTERM)
        app_c.wait(60)
        self.assertLess(time.time() - t0, 20, "the app ignored SIGTERM")

    def test_sidecar_layout(self):
        self.run_overlay("sidecar", "Deployment", "app", 1000)

    def test_node_layout(self):
        self.run_overlay("node", "DaemonSet", "app", 1000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
