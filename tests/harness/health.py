"""A health endpoint on 127.0.0.1 whose answer the test sets (what `--probe` checks): 200
while the release is healthy, then whatever status the test turns it to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health:
    def __init__(self) -> None:
        self.status = 200
        self.url = ""


@contextmanager
def health_server() -> Iterator[Health]:
    health = Health()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = b"ok" if health.status == 200 else b"unhealthy"
            self.send_response(health.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    health.url = f"http://127.0.0.1:{server.server_address[1]}/health"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield health
    finally:
        server.shutdown()
        server.server_close()
