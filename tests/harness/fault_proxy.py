"""An HTTP proxy on 127.0.0.1 in front of moto's server that injects faults into named AWS calls.

Tests point AWS_ENDPOINT_URL at it, the same seam production uses for its endpoint. Each
rule is a queue of faults consumed one request at a time: `throttle` (the service's throttling
error), `5xx` (503), `timeout` (answers after the client's read timeout), `hold` (waits until
the test calls `release`, so a test acts while a call is in flight), `ok` (passes).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def action_of(headers: dict[str, str], body: bytes) -> str:
    """The API action of a request: X-Amz-Target for JSON protocols, Action= for query."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    path = headers.get(":path", "")
    if "/operation/" in path:  # smithy rpc-v2-cbor
        return path.rsplit("/", 1)[-1]
    return parse_qs(body.decode(errors="replace")).get("Action", [""])[0]


def _cbor(value: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (enough for an error body)."""

    def text(t: str) -> bytes:
        raw = t.encode()
        return (bytes([0x60 + len(raw)]) if len(raw) < 24 else bytes([0x78, len(raw)])) + raw

    return bytes([0xA0 + len(value)]) + b"".join(text(k) + text(v) for k, v in value.items())


class FaultProxy:
    def __init__(self, upstream: str, delay: float = 2.0) -> None:
        self.upstream = urlsplit(upstream)
        self.delay = delay
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.seen: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        self.holding = threading.Event()  # a `hold` request is waiting
        self.released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self._handle()

            def do_GET(self) -> None:  # noqa: N802
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers[":path"] = self.path
                action = action_of(headers, body)
                with proxy.lock:
                    proxy.seen[action] += 1
                    queue = proxy.faults.get(action)
                    fault = queue.popleft() if queue else None
                if fault == "timeout":
                    time.sleep(proxy.delay)
                elif fault == "hold":
                    proxy.holding.set()
                    proxy.released.wait(60)
                elif fault not in (None, "ok"):
                    self._fault(fault, headers)
                    return
                connection = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                forwarded = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                connection.request(self.command, self.path, body=body, headers=forwarded)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            def _fault(self, fault: str, headers: dict[str, str]) -> None:
                cbor = "/operation/" in headers[":path"]
                json_protocol = "x-amz-target" in headers or cbor
                if fault == "5xx":
                    status, code = 503, "ServiceUnavailable"
                else:
                    status, code = 400, "ThrottlingException" if json_protocol else "Throttling"
                if cbor:
                    data = _cbor({"__type": code, "message": "injected"})
                    self.send_response(status)
                    self.send_header("smithy-protocol", "rpc-v2-cbor")
                    self.send_header("Content-Type", "application/cbor")
                elif json_protocol:
                    data = b'{"__type": "%s", "message": "injected"}' % code.encode()
                    self.send_response(status)
                    self.send_header("x-amzn-ErrorType", code)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                else:
                    data = (
                        b"<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
                        b"<Message>injected</Message></Error><RequestId>1</RequestId></ErrorResponse>"
                    ) % code.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def inject(self, action: str, *faults: str) -> None:
        with self.lock:
            self.faults[action].extend(faults)

    def release(self) -> None:
        self.released.set()

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()
        self.released.set()
        self.holding.clear()
        self.released = threading.Event()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
