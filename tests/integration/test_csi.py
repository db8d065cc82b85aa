#!/usr/bin/env python3
"""spfs-csi driven as the kubelet drives a CSI node plugin, on a node made
of mount and pid namespaces (csi_node.py): the whole volume lifecycle, the
CSI specification's idempotency and error codes, per-pod identity against
an Entra that federates two service accounts with two apps granted two
different sites, token rotation through republish only, sharing, and what
a crash of a daemon, of the plugin and of the mounter does to pods.

Recovery times are measured and printed ("measured: ..."); they are never
a pass/fail criterion (a long bound only catches hangs).
"""

import os
import sys

# Debian's python3-grpcio (the python3 first on PATH may not see it), in a
# private mount namespace: nothing mounted here reaches the real host, and
# everything goes with this process.
if os.environ.get("SPFS_CSI_TEST_NS") != "1":
    if os.geteuid() != 0:
        print("SKIP: spfs-csi's tests mount and need root")
        sys.exit(77)
    py = sys.executable
    try:
        import grpc  # noqa: F401
    except ImportError:
        py = "/usr/bin/python3"
    os.environ["SPFS_CSI_TEST_NS"] = "1"
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", py,
                          os.path.abspath(__file__)] + sys.argv[1:])

import errno  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402

import grpc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from csi_node import (DRIVER, Container, Kubelet, Node, RsaKey, load_csi_pb2,  # noqa: E402
                      mint_sa_token, mountinfo, pod, spfs_daemons, wait_until)
from emutest import request  # noqa: E402
from mount_helpers import MountCase  # noqa: E402

OPS_CLIENT = "0b5e7ac1-7f0e-4c39-9d51-2a3c4e5f6a7b"


class CsiCase(MountCase):
    """One emulator for the class, set up with two identities; a fresh
    node (kubelet directory, mounter, plugin) for each test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        emu = cls.emu
        cls.pb = load_csi_pb2(cls.tmp)
        with open(os.path.join(emu["dataset_dir"], "tiny.csv"), "rb") as f:
            cls.tiny = f.read()
        # Identity A: the emulator's app, federated with data/spfs-reader,
        # granted the Finance site only. Identity B: another app,
        # federated with apps/ops-reader, granted the Ops site only.
        emu.call("POST", "clients", {"client_id": emu["client_id"], "sites": ["/sites/Finance"]})
        emu.call("POST", "clients", {"client_id": OPS_CLIENT, "sites": ["/teams/Ops"]})
        emu.call("POST", "federated-credentials", {
            "op": "add", "client_id": OPS_CLIENT, "issuer": emu["oidc_issuer"],
            "subject": "system:serviceaccount:apps:ops-reader"})
        cls.finance = {"source": emu["site_url"], "clientID": emu["client_id"],
                       "tenantID": emu["tenant_id"]}
        cls.ops = {"source": "https://contoso.sharepoint.com/teams/Ops",
                   "clientID": OPS_CLIENT, "tenantID": emu["tenant_id"]}
        cls.ops_text = b"team,on call\nops,alice\n"
        ops_drive = cls._drive_of("/teams/Ops", OPS_CLIENT, "apps", "ops-reader")
        emu.mutate("create", "oncall.csv", text=cls.ops_text.decode(), drive=ops_drive)

    @classmethod
    def _drive_of(cls, site_path, client, namespace, sa):
        """The site's default library, as that identity sees it."""
        emu = cls.emu
        jwt = mint_sa_token(RsaKey.load_pem(emu["issuer_key"]), emu["oidc_issuer"], namespace, sa)
        graph = urllib.parse.urlsplit(emu["graph_url"])
        form = {"grant_type": "client_credentials", "client_id": client,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": jwt, "scope": f"{graph.scheme}://{graph.netloc}/.default"}
        r = request(f"{emu['authority_host']}{emu['tenant_id']}/oauth2/v2.0/token", "POST",
                    body=form, cafile=emu["ca_file"])
        auth = {"Authorization": "Bearer " + r.json()["access_token"]}
        site = request(f"{emu['graph_url']}/sites/contoso.sharepoint.com:{site_path}",
                       headers=auth, cafile=emu["ca_file"]).json()
        return request(f"{emu['graph_url']}/sites/{site['id']}/drive", headers=auth,
                       cafile=emu["ca_file"]).json()["id"]

    def setUp(self):
        super().setUp()
        # Short: unix socket paths have 108 bytes. Traversable by anyone,
        # like /var/lib/kubelet, so a non-root app can reach a target.
        self.node_dir = tempfile.mkdtemp(prefix="node", dir=self.tmp)
        os.chmod(self.tmp, 0o755)
        os.chmod(self.node_dir, 0o755)
        method = getattr(self, self._testMethodName)
        self.restart_delay = getattr(method, "restart_delay", 0.5)
        self.node = Node(self.node_dir, self.emu, restart_delay=self.restart_delay)
        self.node.start_mounter()
        self.node.start_plugin()
        self.kubelet = Kubelet(self.node, self.pb, self.emu)
        self.containers = []

    def tearDown(self):
        for c in self.containers:
            c.stop()
        self.kubelet.close()
        failed = any(e for _, e in (getattr(self._outcome, "errors", None) or []) if e)
        self.node.shutdown()
        # spfs --check must end with 0, 1 (refused) or 2 (usage); anything
        # else (a sanitizer's exit, a crash) is a bug the mounter logged.
        odd = [ln for ln in self.node.logs().splitlines() if "spfs --check ended with" in ln]
        if odd and not failed:
            self.fail("spfs --check died: " + " | ".join(odd)[:4000])
        if failed:
            print(f"--- node logs of {self.id()} ---\n{self.node.tail(self.node.mounter_log, 60)}"
                  f"{self.node.tail(self.node.plugin_log, 20)}")
        super().tearDown()

    def container(self, target, propagation="slave"):
        c = Container(target, self.node_dir, propagation)
        self.containers.append(c)
        return c

    def publish(self, p, volume, attrs, **kw):
        req = self.kubelet.publish(p, volume, attrs, **kw)
        return req.volume_id, req.target_path

    def assert_code(self, code, fn, *args, words=None, **kw):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args, **kw)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        for w in [words] if isinstance(words, str) else (words or []):
            self.assertIn(w, ctx.exception.details())
        return ctx.exception.details()

    def daemon_dirs(self):
        return sorted(glob.glob(os.path.join(self.node.state_dir, "daemons", "*")))


class Lifecycle:
    def test_identity_and_node_services(self):
        k, pb = self.kubelet, self.pb
        info = k.call("Identity", "GetPluginInfo", pb.GetPluginInfoRequest(),
                      pb.GetPluginInfoResponse)
        self.assertEqual(info.name, DRIVER)
        self.assertTrue(info.vendor_version)
        caps = k.call("Identity", "GetPluginCapabilities", pb.GetPluginCapabilitiesRequest(),
                      pb.GetPluginCapabilitiesResponse)
        self.assertEqual(list(caps.capabilities), [])  # no controller
        probe = k.call("Identity", "Probe", pb.ProbeRequest(), pb.ProbeResponse)
        self.assertTrue(probe.HasField("ready") and probe.ready.value)
        ncaps = k.call("Node", "NodeGetCapabilities", pb.NodeGetCapabilitiesRequest(),
                       pb.NodeGetCapabilitiesResponse)
        self.assertEqual(list(ncaps.capabilities), [])  # no staging, no stats
        ninfo = k.call("Node", "NodeGetInfo", pb.NodeGetInfoRequest(), pb.NodeGetInfoResponse)
        self.assertEqual(ninfo.node_id, "node-1")
        # RPCs not advertised answer UNIMPLEMENTED.
        self.assert_code(grpc.StatusCode.UNIMPLEMENTED, k.call, "Node", "NodeStageVolume",
                         pb.NodeGetInfoRequest(), pb.NodeGetInfoResponse)
        self.assert_code(grpc.StatusCode.UNIMPLEMENTED, k.call, "Controller", "CreateVolume",
                         pb.NodeGetInfoRequest(), pb.NodeGetInfoResponse)

    def test_publish_read_republish_unpublish(self):
        a = pod("reports-1", "data", "spfs-reader")
        vid, target = self.publish(a, "sharepoint", self.finance)
        self.assertEqual(mountinfo(target)[1], "fuse.spfs")
        app = self.container(target)
        self.assertIn("tiny.csv", app.ask("listdir")["ok"])
        self.assertEqual(app.read("tiny.csv"), self.tiny)
        self.assertEqual(app.ask("write", "new.csv"), {"errno": errno.EROFS})
        # An app that runs as nobody (the restricted standard's non-root
        # user) reads it too: the daemons mount with allow_other.
        r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            "cat", os.path.join(target, "tiny.csv")], capture_output=True)
        self.assertEqual((r.returncode, r.stdout), (0, self.tiny), r.stderr)
        # The mount is read-only on the target too.
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            line = next(ln for ln in f if f" {target} " in ln and "fuse.spfs" in ln)
        self.assertIn("ro", line.split()[5].split(","))

        daemons = spfs_daemons(self.node.state_dir)
        self.assertEqual(len(daemons), 1)
        [key_dir] = self.daemon_dirs()
        token_file = os.path.join(key_dir, "token")
        mount_id = mountinfo(target)[0]

        # Republish (requiresRepublish): a fresh token replaces the old one,
        # nothing is remounted, the same daemon serves on.
        jwt, exp = self.kubelet.token("data", "spfs-reader")
        self.publish(a, "sharepoint", self.finance, token=(jwt, exp))
        with open(token_file, encoding="ascii") as f:
            self.assertEqual(f.read(), jwt)
        self.assertEqual(mountinfo(target)[0], mount_id)
        self.assertEqual(spfs_daemons(self.node.state_dir), daemons)
        self.assertEqual(app.read("tiny.csv"), self.tiny)
        # An identical repeat is OK too (idempotent).
        self.publish(a, "sharepoint", self.finance, token=(jwt, exp))
        self.assertEqual(mountinfo(target)[0], mount_id)

        # The pod ends: its containers first, then the volume.
        app.stop()
        self.containers.remove(app)
        self.kubelet.unpublish(vid, target)
        self.assertIsNone(mountinfo(target))
        self.assertFalse(os.path.exists(target))
        self.assertTrue(wait_until(lambda: not spfs_daemons(self.node.state_dir), 15))
        self.assertEqual(self.daemon_dirs(), [])  # token and cache deleted
        self.assertEqual(self.node.status(), {"daemons": [], "targets": []})
        # Again: still OK (idempotent), and so is a target never published.
        self.kubelet.unpublish(vid, target)
        self.kubelet.unpublish("csi-never", self.kubelet.target(a, "other"))

    def test_invalid_arguments(self):
        k, pb = self.kubelet, self.pb
        a = pod("reports-1", "data", "spfs-reader")
        invalid = grpc.StatusCode.INVALID_ARGUMENT

        def publish_with(words, change=None, **kw):
            req = k.publish_request(a, "sharepoint", self.finance, **kw)
            if change:
                change(req)
            self.assert_code(invalid, k.call, "Node", "NodePublishVolume", req,
                             pb.NodePublishVolumeResponse, words=words)

        def drop(key):
            return lambda r: r.volume_context.pop(key)

        publish_with("volume_id is required", lambda r: setattr(r, "volume_id", ""))
        publish_with("target_path is required", lambda r: setattr(r, "target_path", ""))
        publish_with("volume_capability is required", lambda r: r.ClearField("volume_capability"))
        publish_with("no access_type", lambda r: r.volume_capability.ClearField("mount"))
        publish_with("not a block device",
                     lambda r: r.volume_capability.block.SetInParent())
        publish_with("access_mode is required",
                     lambda r: r.volume_capability.ClearField("access_mode"))
        publish_with("read-only", readonly=False)  # SINGLE_NODE_WRITER, writable
        publish_with("fs_type 'ext4'",
                     lambda r: setattr(r.volume_capability.mount, "fs_type", "ext4"))
        publish_with("source is required", drop("source"))
        publish_with("clientID is required", drop("clientID"))
        publish_with("tenantID is required", drop("tenantID"))
        publish_with("podInfoOnMount", drop("csi.storage.k8s.io/pod.namespace"))
        publish_with("podInfoOnMount", drop("csi.storage.k8s.io/serviceAccount.name"))
        publish_with("tokenRequests", drop("csi.storage.k8s.io/serviceAccount.tokens"))
        publish_with("GUID", lambda r: r.volume_context.update(clientID="spfs-reader"))
        publish_with("unknown volume attribute 'clientId'",
                     lambda r: r.volume_context.update(clientId="x"))
        publish_with("may not be set by a volume",
                     lambda r: r.volume_context.update(options="graph_url=https://evil.example"))
        publish_with("may not be set by a volume", mount_flags=["cafile=/tmp/evil.pem"])
        publish_with("no token for audience", lambda r: r.volume_context.update(
            {"csi.storage.k8s.io/serviceAccount.tokens": json.dumps({"vault": {"token": "a.b.c"}})}))
        publish_with("not below the kubelet",
                     lambda r: setattr(r, "target_path", "/etc/spfs-target"))
        publish_with("'..'", lambda r: setattr(
            r, "target_path", self.node.kubelet_dir + "/pods/../../escape"))

        def unpublish_with(words, vid, target):
            self.assert_code(invalid, k.unpublish, vid, target, words=words)

        target = k.target(a, "sharepoint")
        unpublish_with("volume_id is required", "", target)
        unpublish_with("target_path is required", "csi-1", "")
        unpublish_with("not below the kubelet", "csi-1", "/etc")
        # Nothing was started or mounted for any of them.
        self.assertEqual(self.node.status(), {"daemons": [], "targets": []})
        self.assertEqual(spfs_daemons(self.node.state_dir), {})
        self.assertIsNone(mountinfo(target))

    def test_persistent_volume(self):
        # A static PV: its volumeHandle, ReadOnlyMany, a PVC used without
        # readOnly, and mountOptions carrying spfs options.
        a = pod("pv-user-1", "data", "spfs-reader")
        b = pod("pv-user-2", "data", "spfs-reader")
        pv = dict(volume_id="sharepoint-finance", ephemeral=False, readonly=False, mode=3,
                  mount_flags=["poll_interval=45", "ro"])
        _, ta = self.publish(a, "pv", self.finance, **pv)
        _, tb = self.publish(b, "pv", self.finance, **pv)
        self.assertEqual(self.container(ta).read("tiny.csv"), self.tiny)
        [argv] = spfs_daemons(self.node.state_dir).values()
        self.assertIn("poll_interval=45", argv[-1])  # one daemon for both pods
        # The same target with another volume: ALREADY_EXISTS; unpublish
        # naming another volume than the target's: NOT_FOUND.
        self.assert_code(grpc.StatusCode.ALREADY_EXISTS, self.kubelet.publish, a, "pv",
                         self.finance, volume_id="sharepoint-other", ephemeral=False,
                         readonly=False, mode=3, words="already holds volume sharepoint-finance")
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.kubelet.unpublish, "sharepoint-other",
                         ta, words="holds volume sharepoint-finance")
        self.kubelet.unpublish("sharepoint-finance", ta)
        self.assertEqual(len(spfs_daemons(self.node.state_dir)), 1)  # b still reads
        self.kubelet.unpublish("sharepoint-finance", tb)
        self.assertTrue(wait_until(lambda: not spfs_daemons(self.node.state_dir), 15))

    def test_token_in_secrets(self):
        # Kubernetes 1.35's serviceAccountTokenInSecrets: the token comes in
        # secrets, not in the volume context.
        a = pod("reports-1", "data", "spfs-reader")
        req = self.kubelet.publish(a, "sharepoint", self.finance, in_secrets=True)
        self.assertNotIn("csi.storage.k8s.io/serviceAccount.tokens", req.volume_context)
        self.assertEqual(self.container(req.target_path).read("tiny.csv"), self.tiny)


class Identity:
    def test_per_pod_identity(self):
        a = pod("finance-app", "data", "spfs-reader")
        b = pod("ops-app", "apps", "ops-reader")
        _, ta = self.publish(a, "sharepoint", self.finance)
        _, tb = self.publish(b, "sharepoint", self.ops)
        self.assertEqual(self.container(ta).read("tiny.csv"), self.tiny)
        self.assertEqual(self.container(tb).read("oncall.csv"), self.ops_text)
        self.emu.reset()

        # B's identity may not read Finance: Graph says 403, and the publish
        # fails with spfs's explanation.
        details = self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.kubelet.publish, b,
                                   "finance", self.finance | {"clientID": OPS_CLIENT},
                                   words=["HTTP 403", "Sites.Selected"])
        print(f"refused site: {details}")
        # A service account federated with no app: Entra refuses it with
        # AADSTS70021, and the message says what to create.
        c = pod("stranger", "apps", "nobody")
        details = self.assert_code(
            grpc.StatusCode.PERMISSION_DENIED, self.kubelet.publish, c, "sharepoint",
            self.finance, words=["AADSTS70021", "no federated credential",
                                 "system:serviceaccount:apps:nobody"])
        print(f"refused identity: {details}")
        self.assertIsNone(mountinfo(self.kubelet.target(c, "sharepoint")))
        # Each service account's token went to its own app only.
        seen = {(r["client_id"], r["assertion_sub"], r["result"])
                for r in self.emu.token_requests() if r["method"] == "federated"}
        self.assertIn((OPS_CLIENT, "system:serviceaccount:apps:ops-reader", "ok"), seen)
        self.assertIn((self.emu["client_id"], "system:serviceaccount:apps:nobody", "error"), seen)
        self.assertFalse({s for s in seen if s[0] == self.emu["client_id"] and
                          s[1].endswith(":ops-reader")})

        # Two daemons, two directories, each with its own token and cache,
        # nobody else's; 0700 directories, 0600 token files.
        daemons = spfs_daemons(self.node.state_dir)
        self.assertEqual(len(daemons), 2)
        dirs = self.daemon_dirs()
        self.assertEqual(len(dirs), 2)
        tokens = {}
        for d in dirs:
            self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "cache")).st_mode), 0o700)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "token")).st_mode), 0o600)
            with open(os.path.join(d, "token"), encoding="ascii") as f:
                tokens[d] = f.read()
            with open(os.path.join(d, "volume.json"), encoding="utf-8") as f:
                self.assertNotIn(tokens[d], f.read())
        self.assertEqual(len(set(tokens.values())), 2)
        for d, tok in tokens.items():
            sig = tok.rsplit(".", 1)[1]
            for other in dirs:
                if other == d:
                    continue
                for path, _, files in os.walk(other):
                    for name in files:
                        with open(os.path.join(path, name), "rb") as f:
                            self.assertNotIn(sig.encode(), f.read(),
                                             f"{d}'s token found in {path}/{name}")
            # Tokens never reach a log.
            self.assertNotIn(sig, self.node.logs())
        for argv in daemons.values():
            opts = argv[-1]
            self.assertTrue(any(f"token_file={d}/token" in opts for d in dirs))
            self.assertTrue(any(f"cache_dir={d}/cache" in opts for d in dirs))
        self.assertEqual(len({a[-1] for a in daemons.values()}), 2)


class Sharing:
    def test_fifty_replicas_cost_one_daemon(self):
        # Replicas of a deployment: one service account, one library.
        pods = [pod(f"reports-{i}", "data", "spfs-reader") for i in range(3)]
        vols = [self.publish(p, "sharepoint", self.finance) for p in pods]
        for _, target in vols:
            self.assertEqual(self.container(target).read("tiny.csv"), self.tiny)
        daemons = spfs_daemons(self.node.state_dir)
        self.assertEqual(len(daemons), 1)
        self.assertEqual(len(self.daemon_dirs()), 1)
        status = self.node.status()
        self.assertEqual(len(status["daemons"]), 1)
        self.assertEqual(status["daemons"][0]["targets"], 3)
        self.assertEqual(len(status["targets"]), 3)
        # The same identity with other options: a daemon of its own.
        other = pod("reports-slow", "data", "spfs-reader")
        self.publish(other, "sharepoint", self.finance | {"options": "poll_interval=300"})
        self.assertEqual(len(spfs_daemons(self.node.state_dir)), 2)
        # The last replica's unpublish stops it, not before.
        for c in self.containers:
            c.stop()
        self.containers = []
        for vid, target in vols[:2]:
            self.kubelet.unpublish(vid, target)
        self.assertEqual(set(spfs_daemons(self.node.state_dir)) & set(daemons), set(daemons))
        self.kubelet.unpublish(*vols[2])
        self.assertTrue(wait_until(
            lambda: not set(spfs_daemons(self.node.state_dir)) & set(daemons), 15))
        self.assertEqual(len(self.daemon_dirs()), 1)


class TokenRotation:
    def test_republish_carries_the_identity_past_the_first_tokens_expiry(self):
        """Entra accepts an assertion until 5 minutes after its exp. The
        first token is minted to become unacceptable 20 s from now; access
        tokens live 6 s, so spfs exchanges again and again. Pod A is
        republished with a fresh token as soon as both pods run (well
        before the deadline, even on a slow machine); pod B, a control with
        its own daemon, never is."""
        emu = self.emu
        emu.call("POST", "token-lifetime", {"seconds": 6})
        self.addCleanup(emu.call, "POST", "token-lifetime", {"seconds": 3599})
        now = int(time.time())
        deadline = now + 20
        first = self.kubelet.token("data", "spfs-reader", ttl=60, now=deadline - 300 - 60)
        a = pod("rotating", "data", "spfs-reader")
        b = pod("control", "data", "spfs-reader")
        opts = {"options": "poll_interval=1"}
        _, ta = self.publish(a, "sharepoint", self.finance | opts, token=first)
        _, tb = self.publish(b, "sharepoint", self.finance | opts | {"options": "poll_interval=2"},
                             token=first)
        app_a, app_b = self.container(ta), self.container(tb)
        daemons = spfs_daemons(self.node.state_dir)
        self.assertEqual(len(daemons), 2)
        mount_id = mountinfo(ta)[0]

        self.assertLess(time.time(), deadline - 5, "publishing took too long to test rotation")
        fresh = self.kubelet.token("data", "spfs-reader")
        self.publish(a, "sharepoint", self.finance | opts, token=fresh)

        # Past the first token's end, and past an access token's life.
        time.sleep(max(0, deadline + 8 - time.time()))
        emu.mutate("create", "after-rotation.csv", text="rotated,yes\n")
        self.assertTrue(wait_until(
            lambda: app_a.ask("read", "after-rotation.csv").get("ok") == b"rotated,yes\n".hex(),
            30), "the republished pod does not see a file created after the first token died")
        self.assertEqual(mountinfo(ta)[0], mount_id)  # never remounted
        self.assertEqual(set(spfs_daemons(self.node.state_dir)), set(daemons))

        # What Entra saw after the deadline: the fresh token accepted, the
        # first one refused (the control daemon, still presenting it).
        jti = {json.loads(_b64(t[0].split(".")[1]))["jti"]: name
               for t, name in ((first, "first"), (fresh, "fresh"))}
        late = [(jti.get(r.get("assertion_jti")), r["result"]) for r in emu.token_requests()
                if r["method"] == "federated" and r["t"] > deadline + 1]
        self.assertIn(("fresh", "ok"), late)
        self.assertNotIn(("first", "ok"), late)
        self.assertIn(("first", "error"), late)
        # And the control pod never sees the new file.
        self.assertIn("errno", app_b.ask("read", "after-rotation.csv"))


def _b64(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class PluginRestart:
    def test_volumes_keep_reading_while_the_plugin_is_away(self):
        a = pod("reports-1", "data", "spfs-reader")
        vid, target = self.publish(a, "sharepoint", self.finance)
        app = self.container(target)
        daemons = spfs_daemons(self.node.state_dir)
        self.node.stop_plugin(signal.SIGKILL)
        reads = failures = 0
        t0 = time.time()
        while time.time() - t0 < 3:
            reads += 1
            failures += app.read("tiny.csv") != self.tiny
            time.sleep(0.05)
        self.assertEqual(failures, 0, f"{failures} of {reads} reads failed")
        print(f"measured: {reads} reads, no failure, while the plugin was killed and absent")
        self.node.start_plugin()
        self.kubelet.reconnect()
        self.publish(a, "sharepoint", self.finance)  # the next republish
        self.assertEqual(spfs_daemons(self.node.state_dir), daemons)
        app.stop()
        self.containers.remove(app)
        self.kubelet.unpublish(vid, target)
        self.assertTrue(wait_until(lambda: not spfs_daemons(self.node.state_dir), 15))


class DaemonRestart:
    def test_a_crashed_daemon_is_restarted_and_its_targets_bound_again(self):
        pa, pb = pod("reports-1", "data", "spfs-reader"), pod("reports-2", "data", "spfs-reader")
        _, ta = self.publish(pa, "sharepoint", self.finance)
        _, tb = self.publish(pb, "sharepoint", self.finance)
        running = self.container(ta)
        self.assertEqual(running.read("tiny.csv"), self.tiny)
        [pid] = spfs_daemons(self.node.state_dir)

        t0 = time.time()
        os.kill(pid, signal.SIGKILL)

        def target_serves(t):
            try:
                return set(spfs_daemons(self.node.state_dir)) - {pid} and \
                    "tiny.csv" in os.listdir(t)
            except OSError:
                return False
        self.assertTrue(wait_until(lambda: target_serves(ta) and target_serves(tb), 60))
        recovered = time.time() - t0
        # A container started now (a restarted container) reads again.
        fresh = self.container(tb)
        self.assertEqual(fresh.read("tiny.csv"), self.tiny)
        fresh_at = time.time() - t0
        # One that kept running still holds the dead mount.
        dead = running.ask("listdir")
        self.assertEqual(dead, {"errno": errno.ENOTCONN})
        print(f"measured: daemon killed -> both targets served again in {recovered:.2f} s "
              f"(restart delay {self.restart_delay} s); a new container read after "
              f"{fresh_at:.2f} s; a running container gets ENOTCONN until it restarts")
        self.assertEqual(len(spfs_daemons(self.node.state_dir)), 1)


class MounterRestart:
    def test_a_restarted_mounter_brings_every_volume_back(self):
        a, b = pod("finance-app", "data", "spfs-reader"), pod("ops-app", "apps", "ops-reader")
        va = self.publish(a, "sharepoint", self.finance)
        vb = self.publish(b, "sharepoint", self.ops)
        gone = pod("deleted-meanwhile", "data", "spfs-reader")
        vg = self.publish(gone, "sharepoint", self.finance)
        before = spfs_daemons(self.node.state_dir)
        self.assertEqual(len(before), 2)

        # The mounter's pod is replaced (a crash or a DaemonSet update): its
        # daemons die with it.
        t0 = time.time()
        self.node.stop_mounter(signal.SIGKILL)
        self.assertTrue(wait_until(lambda: not spfs_daemons(self.node.state_dir), 15))
        # Meanwhile the kubelet cleaned up a pod it could not unpublish.
        os.system(f"umount -l '{vg[1]}'; rm -rf '{os.path.dirname(os.path.dirname(vg[1]))}'")
        self.node.start_mounter()

        def serves(target, name):
            try:
                return name in os.listdir(target)
            except OSError:
                return False
        self.assertTrue(wait_until(
            lambda: serves(va[1], "tiny.csv") and serves(vb[1], "oncall.csv"), 60))
        recovered = time.time() - t0
        print(f"measured: mounter killed and started again -> 2 identities' targets served "
              f"again in {recovered:.2f} s")
        after = spfs_daemons(self.node.state_dir)
        self.assertEqual(len(after), 2)
        self.assertFalse(set(after) & set(before))
        self.assertEqual(self.container(vb[1]).read("oncall.csv"), self.ops_text)
        self.assertEqual(len(self.node.status()["targets"]), 2)  # the deleted pod's dropped
        # Republish and unpublish work with the new mounter.
        self.publish(a, "sharepoint", self.finance)
        self.kubelet.unpublish(*va)
        self.kubelet.unpublish(*vb)
        self.assertTrue(wait_until(lambda: not spfs_daemons(self.node.state_dir), 15))


def restart_delay(seconds):
    """The test's mounter restarts crashed daemons after `seconds`."""
    def mark(fn):
        fn.restart_delay = seconds
        return fn
    return mark


class DeadMounts:
    # Crashed daemons wait for a restart far away: their mounts stay dead.
    @restart_delay(3600)
    def test_unpublish_of_a_dead_mount(self):
        a = pod("reports-1", "data", "spfs-reader")
        vid, target = self.publish(a, "sharepoint", self.finance)
        [pid] = spfs_daemons(self.node.state_dir)
        os.kill(pid, signal.SIGKILL)

        def dead():
            try:
                os.stat(target)
                return False
            except OSError as e:
                return e.errno == errno.ENOTCONN
        self.assertTrue(wait_until(dead, 15))
        self.kubelet.unpublish(vid, target)
        self.assertIsNone(mountinfo(target))
        self.assertFalse(os.path.exists(target))
        self.assertEqual(self.node.status()["targets"], [])
        self.assertEqual(self.daemon_dirs(), [])
        time.sleep(1)
        self.assertEqual(spfs_daemons(self.node.state_dir), {})

    @restart_delay(3600)
    def test_unpublish_of_a_dead_mount_the_mounter_does_not_know(self):
        # The mounter lost its records (a wiped state directory) while a
        # dead spfs mount stayed on a target.
        a = pod("reports-1", "data", "spfs-reader")
        vid, target = self.publish(a, "sharepoint", self.finance)
        self.node.stop_mounter(signal.SIGKILL)
        for f in glob.glob(os.path.join(self.node.state_dir, "targets", "*")):
            os.unlink(f)
        self.node.start_mounter()
        self.assertEqual(mountinfo(target)[1], "fuse.spfs")
        self.kubelet.unpublish(vid, target)
        self.assertIsNone(mountinfo(target))
        self.assertFalse(os.path.exists(target))


class CsiNode(Lifecycle, Identity, Sharing, TokenRotation, PluginRestart, DaemonRestart,
              MounterRestart, DeadMounts, CsiCase):
    """Every test above, on one emulator (a fresh node each)."""


if __name__ == "__main__":
    unittest.main(verbosity=2)
