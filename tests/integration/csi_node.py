"""A Kubernetes node for spfs-csi's tests, without Kubernetes: the
kubelet's directory, the mounter and the plugin as the DaemonSets run them,
containers as runc makes them, and a kubelet stand-in that speaks CSI over
gRPC (Debian's python3-grpcio; message classes generated from csi/csi.proto
with protoc at test time).

Namespaces, as on a node:
- the test process runs in a private mount namespace of its own (the
  "host"), so nothing it mounts reaches the real host;
- the kubelet's directory is a shared mount there (the kubelet makes
  /var/lib/kubelet rshared);
- the mounter runs in its own mount and pid namespaces (its container,
  with the kubelet's directory mounted Bidirectional): its binds on targets
  propagate to the host, its spfs mounts stay in its namespace, and killing
  it kills its daemons, as a container's end does;
- a container gets its own mount namespace in which the target is
  bind-mounted recursively at its mount path, made rslave (the volume's
  mountPropagation: HostToContainer) or rprivate (None), as runc does.
"""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SPFS_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD = os.environ.get("SPFS_BUILDDIR", SRC)
SPFS = os.environ.get("SPFS_BIN", os.path.join(BUILD, "spfs"))
SPFS_CSI = os.path.join(BUILD, "spfs-csi")
sys.path.insert(0, os.path.join(SRC, "tests", "emulator"))

from emu_crypto import RsaKey  # noqa: E402
from kubelet import mint_sa_token  # noqa: E402
from mount_helpers import wait_until  # noqa: E402

AUDIENCE = "api://AzureADTokenExchange"
DRIVER = "spfs.csi.spfs-project.github.io"


def load_csi_pb2(workdir):
    """csi_pb2 generated from our csi.proto by protoc, now."""
    out = os.path.join(workdir, "gen")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", f"-I{SRC}/csi", f"--python_out={out}", f"{SRC}/csi/csi.proto"],
                   check=True)
    sys.path.insert(0, out)
    import csi_pb2  # noqa: E402
    return csi_pb2


def mountinfo(path):
    """(mount id, fstype) of the topmost mount at path in our namespace, or
    None. Read from mountinfo, never by stat (a dead FUSE mount would say
    ENOTCONN)."""
    top = None
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            where = fields[4].replace("\\040", " ")
            if where == path:
                top = (int(fields[0]), right.split()[0])
    return top


def spfs_daemons(state_dir):
    """{pid: argv} of the spfs processes serving from state_dir."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/spfs") and any(state_dir.encode() in a for a in argv):
            out[int(pid)] = [a.decode(errors="replace") for a in argv if a]
    return out


def clean_env():
    """Our environment without Azure credentials: the plugin and mounter
    must not depend on what a test runner happens to have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}


def child_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None


# Runs in a container's namespace: binds the target as runc does, then
# answers one JSON command per line.
AGENT = r"""
import json, os, subprocess, sys
target, where, propagation = sys.argv[1:4]
os.makedirs(where, exist_ok=True)
subprocess.run(["mount", "--rbind", target, where], check=True)
subprocess.run(["mount", "--make-r" + propagation, where], check=True)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    op, arg = json.loads(line)
    path = os.path.join(where, arg)
    try:
        if op == "listdir":
            out = sorted(os.listdir(path))
        elif op == "read":
            with open(path, "rb") as f:
                out = f.read().hex()
        elif op == "write":
            with open(path, "wb") as f:
                f.write(b"x")
            out = True
        print(json.dumps({"ok": out}), flush=True)
    except OSError as e:
        print(json.dumps({"errno": e.errno}), flush=True)
"""


class Container:
    """One container of a pod, seeing a target at its mount path."""

    def __init__(self, target, workdir, propagation="slave"):
        self.where = tempfile.mkdtemp(prefix="ctr-", dir=workdir)
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "unchanged", sys.executable, "-c", AGENT,
             target, self.where, propagation],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._line(30)
        if json.loads(line) != {"ready": True}:
            raise RuntimeError(f"container did not start: {line}")

    def _line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the container hung")
        return self.proc.stdout.readline()

    def ask(self, op, path="", timeout=15):
        self.proc.stdin.write(json.dumps([op, path]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line(timeout))

    def read(self, path):
        r = self.ask("read", path)
        return bytes.fromhex(r["ok"]) if "ok" in r else r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class Node:
    """The kubelet's directory, the mounter and the plugin of one node."""

    def __init__(self, workdir, emu, restart_delay=0.5, mounter_args=()):
        self.dir = workdir
        self.emu = emu
        self.kubelet_dir = os.path.join(workdir, "kubelet")
        self.plugin_dir = os.path.join(workdir, "plugin")
        self.state_dir = os.path.join(workdir, "state")
        self.socket = os.path.join(self.plugin_dir, "csi.sock")
        self.mounter_socket = os.path.join(workdir, "run", "mounter.sock")
        self.restart_delay = restart_delay
        self.mounter_args = list(mounter_args)
        for d in (self.kubelet_dir + "/pods", self.plugin_dir, os.path.dirname(self.mounter_socket)):
            os.makedirs(d, exist_ok=True)
        subprocess.run(["mount", "--bind", self.kubelet_dir, self.kubelet_dir], check=True)
        subprocess.run(["mount", "--make-shared", self.kubelet_dir], check=True)
        self.mounter = self.plugin = None
        self.mounter_log = os.path.join(workdir, "mounter.log")
        self.plugin_log = os.path.join(workdir, "plugin.log")

    # ---- the mounter ----
    def start_mounter(self):
        opts = (f"graph_url={self.emu['graph_url']},cafile={self.emu['ca_file']},"
                f"authority_host={self.emu['authority_host']}")
        log = open(self.mounter_log, "ab")
        self.mounter = subprocess.Popen(
            ["unshare", "-m", "-p", "-f", "--kill-child=SIGTERM", "--propagation", "unchanged",
             SPFS_CSI, "mounter", "--mounter-socket", self.mounter_socket,
             "--state-dir", self.state_dir, "--kubelet-dir", self.kubelet_dir, "--spfs", SPFS,
             "--restart-delay", str(self.restart_delay), "-o", opts, *self.mounter_args],
            stdout=log, stderr=log, env=clean_env())
        log.close()
        if not wait_until(lambda: self.status() is not None, 30):
            raise RuntimeError(f"the mounter did not start: {self.tail(self.mounter_log)}")

    def mounter_pid(self):
        """The mounter itself (pid 1 of its pid namespace)."""
        return child_of(self.mounter.pid) if self.mounter else None

    def stop_mounter(self, sig=signal.SIGTERM):
        """SIGTERM: a pod's end (the mounter stops its daemons); SIGKILL: a
        crash (its pid namespace goes, and every daemon with it)."""
        if not self.mounter:
            return
        pid = self.mounter_pid()
        if pid:
            os.kill(pid, sig)
        try:
            self.mounter.wait(30)
        except subprocess.TimeoutExpired:
            self.mounter.kill()
            self.mounter.wait()
        self.mounter = None

    def status(self):
        r = subprocess.run([SPFS_CSI, "status", "--mounter-socket", self.mounter_socket],
                           capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    # ---- the plugin ----
    def start_plugin(self):
        log = open(self.plugin_log, "ab")
        self.plugin = subprocess.Popen(
            [SPFS_CSI, "node", "--endpoint", "unix://" + self.socket, "--node-id", "node-1",
             "--mounter-socket", self.mounter_socket, "--kubelet-dir", self.kubelet_dir],
            stdout=log, stderr=log, env=clean_env())
        log.close()
        if not wait_until(lambda: os.path.exists(self.socket), 30):
            raise RuntimeError(f"the plugin did not start: {self.tail(self.plugin_log)}")

    def stop_plugin(self, sig=signal.SIGTERM):
        if self.plugin:
            self.plugin.send_signal(sig)
            try:
                self.plugin.wait(15)
            except subprocess.TimeoutExpired:
                self.plugin.kill()
                self.plugin.wait()
            self.plugin = None

    @staticmethod
    def tail(path, n=40):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def logs(self):
        with open(self.mounter_log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        with open(self.plugin_log, encoding="utf-8", errors="replace") as f:
            return text + f.read()

    def shutdown(self):
        self.stop_plugin()
        self.stop_mounter()
        # Leftover binds (a test that failed half way); this namespace is
        # private and goes with the test anyway.
        subprocess.run(["umount", "-R", "-l", self.kubelet_dir], capture_output=True)


class Kubelet:
    """What the kubelet does for CSI volumes: the target's parent directory,
    the volume context with pod information and the pod's token, and the
    calls, as pkg/volume/csi does them."""

    def __init__(self, node, csi_pb2, emu):
        import grpc
        self.grpc = grpc
        self.pb = csi_pb2
        self.node = node
        self.emu = emu
        self.issuer_key = RsaKey.load_pem(emu["issuer_key"])
        self.channel = None
        self.reconnect()

    def reconnect(self):
        if self.channel:
            self.channel.close()
        self.channel = self.grpc.insecure_channel("unix://" + self.node.socket)

    def call(self, service, method, request, response_type, timeout=120):
        fn = self.channel.unary_unary(f"/csi.v1.{service}/{method}",
                                      request_serializer=request.SerializeToString,
                                      response_deserializer=response_type.FromString)
        return fn(request, timeout=timeout, wait_for_ready=True)

    def token(self, namespace, sa, ttl=3600, now=None):
        """A bound token for the pod's service account, as the kubelet's
        TokenRequest returns it: (jwt, expirationTimestamp)."""
        now = int(time.time()) if now is None else now
        jwt = mint_sa_token(self.issuer_key, self.emu["oidc_issuer"], namespace, sa, ttl=ttl,
                            now=now)
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + ttl))
        return jwt, exp

    def target(self, pod, volume):
        return os.path.join(self.node.kubelet_dir, "pods", pod["uid"], "volumes",
                            "kubernetes.io~csi", volume, "mount")

    def publish_request(self, pod, volume, attrs, token=None, readonly=True, mode=1,
                        ephemeral=True, volume_id=None, mount_flags=(), in_secrets=False):
        pb = self.pb
        target = self.target(pod, volume)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        ctx = dict(attrs)
        ctx.update({"csi.storage.k8s.io/pod.name": pod["name"],
                    "csi.storage.k8s.io/pod.namespace": pod["namespace"],
                    "csi.storage.k8s.io/pod.uid": pod["uid"],
                    "csi.storage.k8s.io/serviceAccount.name": pod["sa"]})
        if ephemeral:
            ctx["csi.storage.k8s.io/ephemeral"] = "true"
        jwt, exp = token or self.token(pod["namespace"], pod["sa"])
        tokens = json.dumps({AUDIENCE: {"token": jwt, "expirationTimestamp": exp}})
        secrets = {}
        if in_secrets:
            secrets["csi.storage.k8s.io/serviceAccount.tokens"] = tokens
        else:
            ctx["csi.storage.k8s.io/serviceAccount.tokens"] = tokens
        cap = pb.VolumeCapability(mount=pb.VolumeCapability.MountVolume(mount_flags=list(mount_flags)),
                                  access_mode=pb.VolumeCapability.AccessMode(mode=mode))
        # Inline volumes: the kubelet names them after the pod and volume.
        vid = volume_id or "csi-" + uuid.uuid5(uuid.NAMESPACE_URL, pod["uid"] + volume).hex
        return pb.NodePublishVolumeRequest(volume_id=vid, target_path=target,
                                           volume_capability=cap, readonly=readonly,
                                           volume_context=ctx, secrets=secrets)

    def publish(self, pod, volume, attrs, **kw):
        req = self.publish_request(pod, volume, attrs, **kw)
        self.call("Node", "NodePublishVolume", req, self.pb.NodePublishVolumeResponse)
        return req

    def unpublish(self, volume_id, target):
        self.call("Node", "NodeUnpublishVolume",
                  self.pb.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target),
                  self.pb.NodeUnpublishVolumeResponse)

    def close(self):
        self.channel.close()


def pod(name, namespace, sa):
    return {"name": name, "namespace": namespace, "sa": sa,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{name}"))}
