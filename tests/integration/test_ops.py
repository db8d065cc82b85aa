#!/usr/bin/env python3
"""Operating a mount: the Prometheus endpoint and readiness probe
(-o metrics=), structured JSON logs (-o log_format=json)."""

import http.client
import json
import os
import re
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mount_helpers import MountCase, wait_until  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; fails on anything that is not
    the text exposition format (0.0.4)."""
    samples, typed = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            typed[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"not a sample: {line!r}"
        name, labels = m.group(1), {}
        if m.group(3):
            rest = m.group(3)
            while rest:
                lm = LABEL.match(rest)
                assert lm, f"bad labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                rest = rest[lm.end():]
        value = float(m.group(4))
        assert name in typed, f"{name} has no TYPE line"
        if typed[name] == "counter":
            assert name.endswith("_total") and value >= 0, line
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class Metrics(MountCase):
    start_args = ["--profile", "test", "--many", "20", "--large-size", str(8 << 20)]

    def test_scrape_ready_and_counters_move(self):
        port = free_port()
        m = self.mount(cache="cache-metrics", opts=f"metrics=127.0.0.1:{port},chunk_size=1M")
        self.assertTrue(wait_until(lambda: fetch(port, "/ready")[0] == 200, 10))
        os.listdir(m.mountpoint)
        status, headers, body = fetch(port, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        before = parse_prometheus(body.decode())
        self.assertEqual(value(before, "spfs_ready"), 1)
        self.assertGreater(value(before, "spfs_token_expiry_seconds"), 60)
        self.assertGreaterEqual(value(before, "spfs_token_requests_total"), 1)
        self.assertGreaterEqual(
            value(before, "spfs_graph_requests_total", route="children", status="2xx"), 1)

        with open(os.path.join(m.mountpoint, "large", "big.bin"), "rb") as f:
            data = f.read()
        os.listdir(os.path.join(m.mountpoint, "reports", "2026"))
        after = parse_prometheus(fetch(port, "/metrics")[2].decode())
        self.assertEqual(value(after, "spfs_download_bytes_total")
                         - value(before, "spfs_download_bytes_total"), len(data))
        self.assertGreaterEqual(value(after, "spfs_downloads_total"), 8)
        self.assertEqual(value(after, "spfs_graph_requests_total", route="download", status="2xx"),
                         value(after, "spfs_downloads_total"))
        self.assertGreater(value(after, "spfs_cache_bytes"), 0)
        self.assertEqual(value(after, "spfs_hash_verified_total"), 1)

        # HEAD, unknown paths, methods, and health.
        status, headers, body = fetch(port, "/metrics", "HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertGreater(int(headers["Content-Length"]), 100)
        self.assertEqual(fetch(port, "/nope")[0], 404)
        self.assertEqual(fetch(port, "/metrics", "POST")[0], 405)
        self.assertEqual(fetch(port, "/healthz")[0], 200)

        # Throttling shows, with the seconds waited.
        self.emu.fault(route="children", kind="throttle", count=1, retry_after=1)
        os.listdir(os.path.join(m.mountpoint, "names"))
        s = parse_prometheus(fetch(port, "/metrics")[2].decode())
        self.assertEqual(value(s, "spfs_graph_requests_total", route="children", status="429"), 1)
        self.assertGreaterEqual(value(s, "spfs_graph_retry_after_seconds_total"), 1)
        self.assertEqual(value(s, "spfs_graph_throttles_total"), 1)

        m.stop()
        with self.assertRaises(OSError):
            fetch(port, "/ready")

    def test_port_taken_fails_the_mount_clearly(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            with self.assertRaises(RuntimeError) as e:
                self.mount(name="mnt-taken", cache="cache-taken",
                           opts=f"metrics=127.0.0.1:{port}")
            self.assertIn("metrics", str(e.exception))
            self.assertIn("in use", str(e.exception))
        finally:
            s.close()
        with self.assertRaises(RuntimeError) as e:
            self.mount(name="mnt-bad", cache="cache-bad", opts="metrics=example.com:80")
        self.assertIn("HOST:PORT", str(e.exception))

    def test_json_logs(self):
        m = self.mount(cache="cache-json", opts="log_format=json,log_level=debug")
        with open(os.path.join(m.mountpoint, "tiny.csv"), "rb") as f:
            self.assertEqual(f.read(), b"a\n")
        m.stop()
        lines = [ln for ln in m.read_log().splitlines() if ln.strip()]
        self.assertGreater(len(lines), 3)
        for ln in lines:
            rec = json.loads(ln)
            self.assertIn(rec["level"], ("error", "warn", "info", "debug", "trace"))
            self.assertIsInstance(rec["msg"], str)
        self.assertTrue(any("mounted" in json.loads(ln)["msg"] for ln in lines))


if __name__ == "__main__":
    unittest.main(verbosity=2)
