"""A TCP pass-through on 127.0.0.1 in front of a TLS server (the real kube-apiserver), for
the fault a client meets on the wire: connections dropped as they open.

It never sees inside the TLS stream (the client verifies the server's own certificate, whose
name is 127.0.0.1 too); it only decides, per connection, whether to pass it. `drop(n)`: the
next `n` connections are accepted and reset at once, before the TLS handshake (a load
balancer or an API server restarting under the client).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        self.to_drop = 0
        self.dropped = 0  # connections dropped so far
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True, name="tcp-proxy")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def drop(self, connections: int) -> None:
        """Close the next `connections` connections as soon as they are accepted."""
        with self.lock:
            self.to_drop += connections

    def reset(self) -> None:
        """No faults pending, counters at zero (existing connections carry on)."""
        with self.lock:
            self.to_drop = self.dropped = 0

    def close(self) -> None:
        self.closing.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                drop = self.to_drop > 0
                if drop:
                    self.to_drop -= 1
                    self.dropped += 1
            if drop:
                # RST rather than FIN: the client sees the connection reset, not a clean close
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            threading.Thread(target=self._pass, args=(client,), daemon=True).start()

    def _pass(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(None)
        peer = {client: server, server: client}
        with selectors.DefaultSelector() as selector, client, server:
            for s in peer:
                selector.register(s, selectors.EVENT_READ)
            open_ends = 2
            while open_ends and not self.closing.is_set():
                for key, _ in selector.select(timeout=1.0):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        try:
                            peer[source].sendall(data)
                        except OSError:
                            return
                        continue
                    # one side finished: pass the half-close on, stop reading it
                    selector.unregister(source)
                    open_ends -= 1
                    with contextlib.suppress(OSError):
                        peer[source].shutdown(socket.SHUT_WR)
