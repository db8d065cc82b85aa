#!/usr/bin/env python3
"""Authentication end to end: spfs (and the authprobe driver, which runs the
same auth + Graph code) against the emulator, configured exactly as the AKS
workload identity webhook configures a pod."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
EMU_DIR = os.path.join(os.path.dirname(HERE), "emulator")
sys.path.insert(0, EMU_DIR)

import emu_crypto  # noqa: E402
from emutest import EmulatorCase  # noqa: E402
from kubelet import mint_sa_token, write_token_file  # noqa: E402

BUILD = os.environ.get("SPFS_BUILDDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
SPFS = os.environ.get("SPFS_BIN", os.path.join(BUILD, "spfs"))
AUTHPROBE = os.path.join(BUILD, "tests", "tools", "authprobe")
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}")


class Auth(EmulatorCase):
    def setUp(self):
        self.emu.clear_faults()
        self.emu.call("POST", "token-lifetime", {"seconds": 3599})

    def webhook_env(self, **override):
        """The environment the AKS webhook injects (authority with the trailing slash)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
        env.update({"AZURE_CLIENT_ID": self.emu["client_id"],
                    "AZURE_TENANT_ID": self.emu["tenant_id"],
                    "AZURE_AUTHORITY_HOST": self.emu["authority_host"],
                    "AZURE_FEDERATED_TOKEN_FILE": self.emu["sa_token_file"]})
        for k, v in override.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def opts(self, extra=""):
        o = f"graph_url={self.emu['graph_url']},cafile={self.ca}"
        return o + ("," + extra if extra else "")

    def run_spfs(self, *args, env=None, opts=None, timeout=90):
        cmd = [SPFS, "--check", *args, "-o", self.opts(opts or "")]
        return subprocess.run(cmd, env=env or self.webhook_env(), capture_output=True,
                              text=True, timeout=timeout)

    def probe(self, *args, env=None, opts=None, timeout=400):
        cmd = [AUTHPROBE, "--path", f"/drives/{self.emu['drive_id']}/root", *args,
               "-o", self.opts(opts or "")]
        r = subprocess.run(cmd, env=env or self.webhook_env(), capture_output=True,
                           text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_no_secrets(r.stdout + r.stderr)
        return json.loads(r.stdout.strip().splitlines()[-1]), r

    def assert_no_secrets(self, text):
        self.assertIsNone(JWT_LIKE.search(text), "a JWT reached the output")
        with open(self.emu["client_secret_file"], encoding="ascii") as f:
            self.assertNotIn(f.read(), text)

    def sa_file(self, name, **kw):
        key = emu_crypto.RsaKey.load_pem(self.emu["issuer_key"])
        path = os.path.join(self.tmp, name)
        write_token_file(path, mint_sa_token(
            key, kw.pop("issuer", self.emu["oidc_issuer"]), kw.pop("namespace", self.emu["sa_namespace"]),
            kw.pop("sa", self.emu["sa_name"]), **kw))
        return path

    def fed_requests(self):
        return [e for e in self.emu.token_requests() if e["method"] == "federated"]

    # ---- the happy path ----
    def test_check_workload_identity(self):
        r = self.run_spfs("https://contoso.sharepoint.com/sites/Finance",
                          opts="log_level=trace")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        self.assertIn("credential: workload identity", out)
        self.assertIn(f"iss       {self.emu['oidc_issuer']}", out)
        self.assertIn(f"system:serviceaccount:{self.emu['sa_namespace']}:{self.emu['sa_name']}", out)
        self.assertIn("api://AzureADTokenExchange", out)
        self.assertIn(f"appid     {self.emu['client_id']}", out)
        self.assertIn(f"tid       {self.emu['tenant_id']}", out)
        self.assertIn("roles     Sites.Selected", out)
        self.assertIn("result: ok", out)
        self.assert_no_secrets(r.stdout + r.stderr)
        with open(self.emu["sa_token_file"], encoding="ascii") as f:
            self.assertNotIn(f.read().split(".")[2], r.stdout + r.stderr)

    def test_rotated_token_file_is_presented(self):
        self.emu.call("POST", "token-lifetime", {"seconds": 6})
        self.emu.reset()
        token_file = os.path.join(self.tmp, "rotating-token")
        kubelet = subprocess.Popen([sys.executable, os.path.join(EMU_DIR, "kubelet.py"),
                                    "--state", os.path.join(self.state_dir, "state.json"),
                                    "--out", token_file, "--rotate", "1"])
        try:
            time.sleep(0.5)
            stats, _ = self.probe("--seconds", "14", "--pause-ms", "100",
                                  env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=token_file))
        finally:
            kubelet.terminate()
            kubelet.wait(5)
        fed = self.fed_requests()
        self.assertEqual(stats["status_401"] + stats["errors"] + stats["other_status"], 0, stats)
        self.assertGreaterEqual(len(fed), 3)
        # Every exchange presented what was in the file then: a new token each time.
        self.assertEqual(len({e["assertion_jti"] for e in fed}), len(fed))

    def test_short_tokens_refreshed_for_a_minute(self):
        # The mounted three-minute (and hour-long) form is test_soak.py.
        self.emu.call("POST", "token-lifetime", {"seconds": 20})
        self.emu.reset()
        stats, _ = self.probe("--threads", "2", "--seconds", "60", "--pause-ms", "200")
        self.assertEqual(stats["status_401"], 0, stats)
        self.assertEqual(stats["errors"] + stats["other_status"], 0, stats)
        self.assertGreater(stats["ok"], 150)
        # Refresh at half-life: about one request per 10 s, no storm.
        self.assertTrue(5 <= stats["token_requests"] <= 8, stats)
        self.assertEqual(len(self.fed_requests()), stats["token_requests"])
        self.assertEqual(self.emu.requests("root")[-1]["status"], 200)

    def test_graph_401_one_refresh_one_retry(self):
        self.emu.reset()
        self.emu.fault(route="root", kind="expired_token", count=1)
        stats, _ = self.probe("--calls", "1")
        self.assertEqual(stats["ok"], 1, stats)
        self.assertEqual(stats["status_401"], 0, stats)
        self.assertEqual(stats["auth_retries"], 1, stats)
        self.assertEqual(stats["token_requests"], 2, stats)
        self.assertEqual(self.emu.counters()["root"], 2)
        self.assertEqual(len(self.fed_requests()), 2)
        # A 401 that persists reaches the caller after exactly one retry.
        self.emu.reset()
        self.emu.fault(route="root", kind="expired_token", count=5)
        stats, _ = self.probe("--calls", "1")
        self.assertEqual(stats["status_401"], 1, stats)
        self.assertEqual(self.emu.counters()["root"], 2)

    def test_eight_concurrent_callers_one_token_request(self):
        self.emu.call("POST", "token-lifetime", {"seconds": 4})
        self.emu.reset()
        # Round 1: cold. Round 2 (5 s later): the token has expired.
        stats, _ = self.probe("--threads", "8", "--calls", "2", "--pause-ms", "5000")
        self.assertEqual(stats["ok"], 16, stats)
        self.assertEqual(stats["token_requests"], 2, stats)
        self.assertEqual(len(self.fed_requests()), 2)

    def test_expired_assertion_reread_and_retried_once(self):
        expired = self.sa_file("expiring-token", now=time.time() - 7200)
        self.emu.reset()
        self.emu.fault(route="token", kind="latency", ms=1500, count=1)
        fresh = mint_sa_token(emu_crypto.RsaKey.load_pem(self.emu["issuer_key"]),
                              self.emu["oidc_issuer"], self.emu["sa_namespace"], self.emu["sa_name"])
        # kubelet rotates the file while the first exchange is in flight.
        t = threading.Timer(0.5, write_token_file, (expired, fresh))
        t.start()
        r = self.run_spfs(env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=expired))
        t.join()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        fed = self.fed_requests()
        self.assertEqual([e.get("aadsts") for e in fed], [700024, None])
        self.assertNotEqual(fed[0]["assertion_jti"], fed[1]["assertion_jti"])
        self.assertIn("re-reading", r.stderr)

    # ---- failures a person can act on ----
    def check_fails(self, expect, env=None, opts=None):
        r = self.run_spfs(env=env, opts=opts)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        text = r.stdout + r.stderr
        for e in expect:
            self.assertIn(e, text)
        self.assert_no_secrets(text)
        return text

    def test_aadsts_messages(self):
        iss, ns, sa = self.emu["oidc_issuer"], self.emu["sa_namespace"], self.emu["sa_name"]
        self.check_fails(["AADSTS700016", "was not found in tenant", "AZURE_CLIENT_ID"],
                         env=self.webhook_env(AZURE_CLIENT_ID="00000000-0000-0000-0000-000000000001"))
        other = self.sa_file("other-sa", sa="other")
        self.check_fails(["AADSTS70021", iss, f"system:serviceaccount:{ns}:other", "trailing slash"],
                         env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=other))
        old = self.sa_file("old", now=time.time() - 7200)
        self.check_fails(["AADSTS700024", "expires", "local time", "clock"],
                         env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=old))
        unreachable = "https://127.0.0.1:9/cluster/"
        self.emu.call("POST", "federated-credentials",
                      {"op": "add", "issuer": unreachable, "subject": "system:serviceaccount:x:y"})
        far = self.sa_file("far", issuer=unreachable, namespace="x", sa="y")
        self.check_fails(["AADSTS90061", unreachable + ".well-known/openid-configuration"],
                         env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=far))
        self.check_fails(["AADSTS90002", "AZURE_TENANT_ID"],
                         env=self.webhook_env(AZURE_TENANT_ID="11111111-2222-3333-4444-555555555555"))

    def test_scope_for_a_gateway(self):
        """Graph reached under another host name (a gateway such as API
        Management in front of it): the scope derived from that host is no
        resource Entra knows (AADSTS500011, explained); -o scope names the
        real one, and --check says where the scope came from."""
        port = self.emu["graph_url"].split(":")[2].split("/")[0]
        gateway = f"https://localhost:{port}/v1.0"
        r = subprocess.run([SPFS, "--check", "https://contoso.sharepoint.com/sites/Finance",
                            "-o", f"graph_url={gateway},cafile={self.ca}"],
                           env=self.webhook_env(), capture_output=True, text=True, timeout=90)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn(f"scope     https://localhost:{port}/.default (derived from -o graph_url",
                      r.stdout)
        self.assertIn("AADSTS500011", r.stdout)
        self.assertIn("set -o scope=https://graph.microsoft.com/.default", r.stdout)
        r = subprocess.run([SPFS, "--check", "https://contoso.sharepoint.com/sites/Finance",
                            "-o", f"graph_url={gateway},cafile={self.ca},"
                            "scope=https://graph.microsoft.com/.default"],
                           env=self.webhook_env(), capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("scope     https://graph.microsoft.com/.default (-o scope)", r.stdout)
        self.assertIn("root listing:", r.stdout)
        r = subprocess.run([SPFS, "--check", "-o", "scope=https://graph.microsoft.com"],
                           env=self.webhook_env(), capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, 1)
        self.assertIn("expected RESOURCE/.default", r.stderr)

    def test_missing_environment(self):
        self.check_fails(["AZURE_FEDERATED_TOKEN_FILE", 'azure.workload.identity/use: "true"'],
                         env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=None), opts="auth=workload")
        self.check_fails(["AZURE_CLIENT_ID", "azure.workload.identity/client-id"],
                         env=self.webhook_env(AZURE_CLIENT_ID=None))
        self.check_fails(["cannot read the service-account token", "No such file"],
                         env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE="/nonexistent/token"))

    def test_http_and_tls_refused(self):
        http_authority = self.emu["authority_host"].replace("https://", "http://")
        self.check_fails(["not an https:// URL", "allow_http"],
                         env=self.webhook_env(AZURE_AUTHORITY_HOST=http_authority))
        # Without the emulator's CA, verification fails: never a fallback.
        r = subprocess.run([SPFS, "--check", "-o", f"graph_url={self.emu['graph_url']}"],
                           env=self.webhook_env(), capture_output=True, text=True, timeout=90)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("TLS", r.stdout + r.stderr)

    # ---- other credentials ----
    def test_managed_identity_with_and_without_client_id(self):
        env = self.webhook_env(AZURE_CLIENT_ID=None, AZURE_TENANT_ID=None,
                               AZURE_FEDERATED_TOKEN_FILE=None)
        r = self.run_spfs(env=env, opts=f"imds_url={self.emu['imds_url']}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("credential: managed identity", r.stdout)
        self.assertIn(f"appid     {self.emu['imds_system_client_id']}", r.stdout)
        r = self.run_spfs(env=env, opts=f"auth=managed,imds_url={self.emu['imds_url']},"
                                        f"imds_client_id={self.emu['imds_client_id']}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"appid     {self.emu['imds_client_id']}", r.stdout)
        r = self.run_spfs(env=env, opts=f"auth=managed,imds_url={self.emu['imds_url']},imds_client_id=nobody")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Identity not found", r.stdout + r.stderr)

    def test_certificate(self):
        env = self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=None,
                               AZURE_CLIENT_CERTIFICATE_PATH=self.emu["client_cert"])
        self.emu.reset()
        r = self.run_spfs(env=env, opts=f"cert_key={self.emu['client_key']}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("credential: client certificate", r.stdout)
        self.assertEqual([e["method"] for e in self.emu.token_requests()], ["certificate"])
        rogue = os.path.join(self.tmp, "rogue.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", rogue,
                        "-out", rogue + ".crt", "-days", "1", "-subj", "/CN=rogue"],
                       check=True, capture_output=True)
        text = self.check_fails(["AADSTS700027", "not registered"], env=self.webhook_env(
            AZURE_FEDERATED_TOKEN_FILE=None, AZURE_CLIENT_CERTIFICATE_PATH=rogue + ".crt"),
            opts=f"cert_key={rogue}")
        self.assertNotIn("PRIVATE KEY", text)

    def test_secret(self):
        with open(self.emu["client_secret_file"], encoding="ascii") as f:
            secret = f.read()
        env = self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=None, AZURE_CLIENT_SECRET=secret)
        r = self.run_spfs(env=env, opts="log_level=trace")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("credential: client secret", r.stdout)
        self.assert_no_secrets(r.stdout + r.stderr)
        r = self.run_spfs(env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=None),
                          opts=f"secret_file={self.emu['client_secret_file']}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_fails(["AADSTS7000215", "invalid client secret"],
                         env=self.webhook_env(AZURE_FEDERATED_TOKEN_FILE=None, AZURE_CLIENT_SECRET="nope"))
        r = subprocess.run([SPFS, "--check", "-o", "client_secret=hunter2"], env=self.webhook_env(),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("never accepted on the command line", r.stderr)
        self.assertNotIn("hunter2", r.stderr)

    def test_fixed_token_file_is_tried_at_once(self):
        """A token file that Entra refuses, then fixed while mounted: the
        next listing uses the new file at once, not after the backoff."""
        sys.path.insert(0, HERE)
        from mount_helpers import Mount  # noqa: E402
        token = self.sa_file("fixable-token")
        cache = os.path.join(self.tmp, "cache-fixable")
        mnt = os.path.join(self.tmp, "mnt-fixable")
        env = {"AZURE_FEDERATED_TOKEN_FILE": token}
        # A first mount remembers the library, so the next one mounts from
        # the cache whatever Entra says.
        m = Mount(self.emu, mnt, cache, env=env, opts="poll_interval=0")
        os.listdir(mnt)
        m.stop()
        self.sa_file("fixable-token", sa="someone-else")  # no federated credential
        m = Mount(self.emu, mnt, cache, env=env, opts="poll_interval=0")
        try:
            before = len(self.fed_requests())
            # Listings of a folder never listed fail while Entra refuses;
            # each refusal lengthens the backoff (1, 2, then 4 s).
            deadline = time.time() + 30
            while len(self.fed_requests()) < before + 3 and time.time() < deadline:
                with self.assertRaises(PermissionError):
                    os.listdir(os.path.join(mnt, "reports"))
                time.sleep(0.05)
            self.assertEqual(len(self.fed_requests()), before + 3)
            # Fixed now; the backoff still has at least 3.2 s to run.
            self.sa_file("fixable-token")
            self.assertIn("summary.xlsx", os.listdir(os.path.join(mnt, "reports")))
            self.assertIn("changed since the last failure", m.read_log())
        finally:
            m.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
