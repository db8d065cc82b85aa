"""HTTP plumbing shared by the emulator's listeners.

Each listener is a ThreadingHTTPServer (HTTP/1.1, keep-alive) optionally
wrapped in TLS; the handshake runs in the connection's own thread so one
slow client cannot stall the accept loop. Every request goes through
Emulator.faults (latency, throttling, resets, truncation, malformed bodies)
and lands in the request log with its route, status and timestamps.
"""

import http.server
import json
import random
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate


class Request:
    """One request as the apps see it."""

    def __init__(self, handler, method):
        self.h = handler
        self.method = method
        split = urllib.parse.urlsplit(handler.path)
        self.raw_path = split.path
        self.path = urllib.parse.unquote(split.path)
        self.raw_query = split.query
        self.query = {}
        for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            self.query.setdefault(k, v)
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""
        self.route = "unknown"
        self.status = 0
        self.sent = False
        self.extra_log = {}

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def q(self, *names, default=None):
        """A query parameter under any of its spellings ($top or top)."""
        for n in names:
            if n in self.query:
                return self.query[n]
        return default


class Listener:
    """A server bound to 127.0.0.1 on a free port, running app.handle(req)."""

    def __init__(self, name, app, emulator, tls_context=None):
        self.name = name
        self.app = app
        self.emu = emulator
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "spfs-emulator"
            sys_version = ""

            def log_message(self, fmt, *args):  # the request log replaces this
                pass

            def setup(self):
                super().setup()
                with listener.conn_lock:
                    listener.conns.add(self.connection)
                if isinstance(self.connection, ssl.SSLSocket):
                    try:
                        self.connection.do_handshake()
                    except (ssl.SSLError, OSError):
                        self.close_connection = True
                        raise

            def finish(self):
                with listener.conn_lock:
                    listener.conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def _dispatch(self, method):
                req = Request(self, method)
                started = time.time()
                try:
                    listener.app.handle(req)
                    if not req.sent:
                        send_error_json(req, 404, "itemNotFound", "no such route")
                except ConnectionError:
                    self.close_connection = True
                except Exception as e:  # a bug in the emulator: say so loudly
                    listener.emu.log(f"{listener.name}: {method} {req.raw_path}: {e!r}")
                    if not req.sent:
                        send_error_json(req, 500, "generalException", "emulator error")
                finally:
                    listener.emu.record(listener, req, started)

            def do_GET(self):
                self._dispatch("GET")

            def do_HEAD(self):
                self._dispatch("HEAD")

            def do_POST(self):
                self._dispatch("POST")

            def do_PUT(self):
                self._dispatch("PUT")

            def do_DELETE(self):
                self._dispatch("DELETE")

            def do_PATCH(self):
                self._dispatch("PATCH")

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

            def handle_error(self, request, client_address):
                # One line instead of socketserver's traceback: failed TLS
                # handshakes (a client without our CA) are expected in tests.
                exc = sys.exc_info()[1]
                listener.emu.log(f"{listener.name}: connection from {client_address[0]}:"
                                 f"{client_address[1]} failed: {exc!r}")

        self.conns = set()
        self.conn_lock = threading.Lock()
        self.tls_context = tls_context
        self.server_class, self.handler_class = Server, Handler
        self._bind(0)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls_context else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.down = False

    def _bind(self, port):
        self.server = self.server_class(("127.0.0.1", port), self.handler_class)
        if self.tls_context is not None:
            self.server.socket = self.tls_context.wrap_socket(
                self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       name=f"listener-{self.name}", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def go_down(self):
        """As if the process had died: the port refuses connections and open
        ones are cut (RST)."""
        if self.down:
            return
        self.down = True
        self.stop()
        with self.conn_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def come_up(self):
        """Listening again on the same port, as a restarted service would."""
        if not self.down:
            return
        self._bind(self.port)
        self.down = False
        self.start()


# ---- responses --------------------------------------------------------------

def _begin(req, status, headers, length):
    h = req.h
    req.status = status
    req.sent = True
    h.send_response(status)
    h.send_header("Date", formatdate(usegmt=True))
    crid = req.header("client-request-id")
    if crid:
        h.send_header("client-request-id", crid)
    h.send_header("request-id", req.extra_log.setdefault("request_id", _uuid()))
    for k, v in headers.items():
        h.send_header(k, v)
    if length is not None:
        h.send_header("Content-Length", str(length))
    h.end_headers()


def _uuid():
    return "%08x-%04x-4%03x-a%03x-%012x" % (
        random.getrandbits(32), random.getrandbits(16), random.getrandbits(12),
        random.getrandbits(12), random.getrandbits(48))


def _abort(req):
    """End the connection mid-body: a reset (RST) for the reset fault, a
    plain close for the truncate fault (Content-Length promised more)."""
    fault = req.extra_log.get("body_fault") or {}
    sock = req.h.connection
    if fault.get("kind") == "reset":
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            (1).to_bytes(4, "little") + (0).to_bytes(4, "little"))
        except OSError:
            pass
    req.h.close_connection = True
    raise ConnectionAbortedError(f"fault: {fault.get('kind')}")


def _write(req, data):
    """Writes a body, or trickles it at the `slow` fault's bytes per second
    (in tenths of a second), as a service that answers but barely."""
    bps = req.extra_log.get("slow_bps")
    if not bps:
        req.h.wfile.write(data)
        return
    req.extra_log.setdefault("body_fault", {"kind": "slow"})
    step = max(1, int(bps / 10))
    view = memoryview(data)
    for i in range(0, len(view), step):
        if i:
            time.sleep(step / bps)
        req.h.wfile.write(view[i:i + step])
        req.h.wfile.flush()


def send_bytes(req, status, data, headers=None, content_type="application/json"):
    headers = dict(headers or {})
    if content_type:
        headers.setdefault("Content-Type", content_type)
    fault = req.extra_log.get("body_fault")
    if req.method == "HEAD":
        _begin(req, status, headers, len(data))
        return
    if fault and fault["kind"] == "malformed" and content_type.startswith("application/json"):
        data = data[: max(1, len(data) // 2)] + b"\x00{]"
    _begin(req, status, headers, len(data))
    cut = _fault_cut(req, len(data))
    if cut is not None:
        req.h.wfile.write(data[:cut])
        req.h.wfile.flush()
        _abort(req)
    _write(req, data)


def send_json(req, status, obj, headers=None):
    patch = req.extra_log.get("json_patch")
    if patch and status < 300 and isinstance(obj, dict):
        # A `patch` fault: members of a successful answer set as the test
        # says ({"token_type": null}, {"expires_in": 2**63 - 1}, ...).
        obj = {**obj, **patch}
        req.extra_log["body_fault"] = {"kind": "patch"}
    send_bytes(req, status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
               headers, "application/json; charset=utf-8")


def send_error_json(req, status, code, message, headers=None, inner_code=None):
    inner = {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
             "request-id": req.extra_log.setdefault("request_id", _uuid()),
             "client-request-id": req.header("client-request-id") or ""}
    if inner_code:
        inner["code"] = inner_code
    send_json(req, status, {"error": {"code": code, "message": message, "innerError": inner}},
              headers)


def _fault_cut(req, total):
    """Where to cut a body short, if a reset/truncate fault applies."""
    fault = req.extra_log.get("body_fault")
    if not fault or fault["kind"] not in ("reset", "truncate") or total == 0:
        return None
    after = int(fault.get("after_bytes", total // 2))
    return max(0, min(after, total - 1))


def send_file_range(req, status, f, start, length, headers):
    """Streams length bytes of the open file f from start, in 1 MiB writes
    (big writes keep the Python host close to nginx's throughput)."""
    _begin(req, status, headers, length)
    if req.method == "HEAD" or length == 0:
        return
    cut = _fault_cut(req, length)
    left = length if cut is None else cut
    f.seek(start)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while left > 0:
        n = f.readinto(view[:min(left, len(buf))])
        if not n:
            break
        _write(req, view[:n])
        left -= n
    if cut is not None:
        req.h.wfile.flush()
        _abort(req)


def http_date(t):
    return formatdate(t, usegmt=True)
