"""One color's backend for the real Gateway: a plain HTTP server answering its color's name.

Run as a script inside the test's network namespace (`ip netns exec NS python color_backend.py
COLOR HOST PORT`), so its address is one an EndpointSlice accepts (not loopback). It prints
`ready` once the socket is bound: the harness waits on that line, not on a delay.

A release that errs: `PUT /_backend/errors` with a share (`0.1`) in its body makes that share
of the requests that follow answer an application 500 whose body carries `INJECTED` (so a
client tells them from the 5xx a gateway produces), spread evenly (every tenth, not a random
tenth); `0` stops it. A service that takes time: `PUT /_backend/latency` with seconds
(`0.01`) holds every answer that long, so that requests are in flight whenever the weights
move. The harness calls both on the backend's own address, never through the Gateway.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INJECTED = "injected-error"  # the marker in the body of every injected 500
CONTROL = "/_backend/errors"
LATENCY = "/_backend/latency"


class ErrorShare:
    """Which requests answer 500: a running sum of the share, one error each time it passes a
    whole number (exactly the share over any run of requests, with no randomness)."""

    def __init__(self) -> None:
        self.share = 0.0
        self.owed = 0.0
        self.lock = threading.Lock()

    def set(self, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"an error share is between 0 and 1, not {share}")
        with self.lock:
            self.share, self.owed = share, 0.0

    def next_fails(self) -> bool:
        with self.lock:
            self.owed += self.share
            if self.owed >= 1.0:
                self.owed -= 1.0
                return True
            return False


def serve(color: str, host: str, port: int) -> None:
    body = color.encode()
    failed = f"{INJECTED} {color}".encode()
    errors = ErrorShare()
    latency = [0.0]  # seconds each answer is held

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as the Gateway's connection pool expects of a backend; and no Nagle:
        # headers and body go out in two writes, and the second would wait for the Gateway's
        # delayed ACK (40 ms a request).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def answer(self, status: int, content: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if latency[0]:
                time.sleep(latency[0])
            if errors.next_fails():
                self.answer(500, failed)
            else:
                self.answer(200, body)

        def do_PUT(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            value = self.rfile.read(length).decode()
            try:
                if self.path == CONTROL:
                    errors.set(float(value))
                elif self.path == LATENCY and 0 <= float(value) <= 60:
                    latency[0] = float(value)
                else:
                    self.answer(404, f"no control {self.path} for {value!r}".encode())
                    return
            except ValueError as e:
                self.answer(400, str(e).encode())
                return
            self.answer(200, f"{self.path} {value}".encode())

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # The stdlib's listen backlog is 5: a Gateway opening its pool at once would see
        # SYNs dropped and retried a second later.
        request_queue_size = 128
        daemon_threads = True

    server = Server((host, port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
