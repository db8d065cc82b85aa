"""Helpers for tests that run a real emulator: start/stop, and an HTTP
client that verifies TLS against the emulator's CA (never disabled)."""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from emuctl import Emu  # noqa: E402


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def request(url, method="GET", headers=None, body=None, cafile=None, timeout=30):
    """One request, no redirects followed. Raises on transport errors."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=cafile)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path + ("?" + u.query if u.query else "")
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


class EmulatorCase(unittest.TestCase):
    """Starts one emulator for the class; stops it even when tests fail."""

    start_args = ["--profile", "test", "--many", "20", "--large-size", str(1 << 20)]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="spfs-emutest-")
        cls.state_dir = os.path.join(cls.tmp, "emu")
        subprocess.run([sys.executable, os.path.join(HERE, "emulator.py"), "start",
                        "--state-dir", cls.state_dir, *cls.start_args],
                       check=True, stdout=subprocess.DEVNULL)
        cls.emu = Emu(cls.state_dir)
        cls.ca = cls.emu["ca_file"]

    @classmethod
    def tearDownClass(cls):
        subprocess.run([sys.executable, os.path.join(HERE, "emulator.py"), "stop",
                        "--state-dir", cls.state_dir], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, url, **kw):
        kw.setdefault("cafile", self.ca)
        return request(url, **kw)

    def post(self, url, body, **kw):
        kw.setdefault("cafile", self.ca)
        return request(url, method="POST", body=body, **kw)

    def token_url(self, tenant=None):
        return f"{self.emu['authority_host']}{tenant or self.emu['tenant_id']}/oauth2/v2.0/token"

    def scope(self):
        u = urllib.parse.urlsplit(self.emu["graph_url"])
        return f"{u.scheme}://{u.netloc}/.default"

    def workload_form(self, assertion=None, **extra):
        if assertion is None:
            with open(self.emu["sa_token_file"], encoding="ascii") as f:
                assertion = f.read()
        form = {"grant_type": "client_credentials", "client_id": self.emu["client_id"],
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion, "scope": self.scope()}
        form.update(extra)
        return form

    def access_token(self):
        r = self.post(self.token_url(), self.workload_form())
        self.assertEqual(r.status, 200, r.body)
        return r.json()["access_token"]

    def graph(self, path, token=None, **kw):
        headers = dict(kw.pop("headers", {}))
        headers["Authorization"] = f"Bearer {token or self.access_token()}"
        url = path if path.startswith("https://") else self.emu["graph_url"] + path
        return self.get(url, headers=headers, **kw)


def wait_for(pred, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False
