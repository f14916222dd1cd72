"""One color's backend for the real Gateway: a plain HTTP server answering its color's name.

Run as a script inside the test's network namespace (`ip netns exec NS python color_backend.py
COLOR HOST PORT`), so its address is one an EndpointSlice accepts (not loopback). It prints
`ready` once the socket is bound: the harness waits on that line, not on a delay.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(color: str, host: str, port: int) -> None:
    body = color.encode()

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as the Gateway's connection pool expects of a backend; and no Nagle:
        # headers and body go out in two writes, and the second would wait for the Gateway's
        # delayed ACK (40 ms a request).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
