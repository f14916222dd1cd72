"""A real Prometheus server (Debian's `prometheus`) on 127.0.0.1, scraping a small exporter of
per-color request, error and latency counters that follow the weights the HTTPRoute serves,
and of the Gateway's requests by response code.

The exporter stands for the service's pods and the Gateway (what a mesh, the Gateway or the
app exports); the analysis and the downtime guard read it only through Prometheus's HTTP API,
as in production. The Gateway's series are Istio's shape: a `flags` label that is `-` unless
the Gateway itself failed the request (here `UF`, an upstream connection failure, at the
traffic model's `elb_error_percent` of each color's requests).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rehearsal.aws import free_port, local_server
from rehearsal.traffic import Traffic

# What the analysis asks Prometheus for the exporter's series (cutover:analysis.prometheus.queries).
SELECTOR = 'namespace="$namespace",service="$service"'
GATEWAY = 'namespace="$namespace",route="$route"'
QUERIES = {
    "requests": f"sum(increase(app_requests_total{{{SELECTOR}}}[$window]))",
    "errors": f"sum(increase(app_errors_total{{{SELECTOR}}}[$window]))",
    "latency": f"sum(increase(app_latency_seconds_sum{{{SELECTOR}}}[$window])) / "
    f"sum(increase(app_latency_seconds_count{{{SELECTOR}}}[$window]))",
    "gatewayRequests": f"sum(increase(gateway_requests_total{{{GATEWAY}}}[$window]))",
    "gatewayErrors": f'sum(increase(gateway_requests_total{{{GATEWAY},code=~"5..",flags!="-"}}'
    "[$window]))",
}
# The Gateway's series: (code, flags) -> what the tick counts there.
GATEWAY_CODES = {("200", "-"): "served", ("500", "-"): "errors", ("503", "UF"): "refused"}


def require_prometheus() -> str:
    """The `prometheus` binary; skipped with the reason where it is missing, failed instead when
    CUTOVER_TESTS_REQUIRE_PROMETHEUS is set (as `.ci/run` sets it)."""
    found = shutil.which("prometheus")
    if found is None:
        message = "the prometheus server is not on PATH (apt-get install prometheus)"
        if os.environ.get("CUTOVER_TESTS_REQUIRE_PROMETHEUS"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class ColorExporter:
    """Counters per color at /metrics, advanced every `tick` by `traffic` under `weights()`."""

    def __init__(
        self,
        namespace: str,
        services: dict[str, str],
        weights: Callable[[], dict[str, int]],
        traffic: Traffic,
        seed: int = 11,
        route: str = "checkout",
    ) -> None:
        self.namespace, self.services, self.weights, self.traffic = (
            namespace,
            services,
            weights,
            traffic,
        )
        self.route = route
        self.rng = random.Random(seed)
        self.counts = {c: {"requests": 0, "errors": 0, "latency": 0.0} for c in services}
        self.gateway = dict.fromkeys(GATEWAY_CODES.values(), 0)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                body = exporter.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self.run, daemon=True),
        ]

    def exposition(self) -> str:
        lines = []
        with self.lock:
            for name, key in (
                ("app_requests_total", "requests"),
                ("app_errors_total", "errors"),
                ("app_latency_seconds_sum", "latency"),
                ("app_latency_seconds_count", "requests"),
            ):
                for color, service in self.services.items():
                    labels = f'namespace="{self.namespace}",service="{service}"'
                    lines.append(f"{name}{{{labels}}} {self.counts[color][key]}")
            for (code, flags), key in GATEWAY_CODES.items():
                labels = (f'namespace="{self.namespace}",route="{self.route}",code="{code}",'
                          f'flags="{flags}"')  # fmt: skip
                lines.append(f"gateway_requests_total{{{labels}}} {self.gateway[key]}")
        return "\n".join(lines) + "\n"

    def run(self, tick: float = 0.1) -> None:
        """Every `tick`, the traffic of the time that passed since the last: on a busy machine
        a tick comes late, and the rate per second stays the model's (a starved thread once
        left the windows before a shift with a fifth of their requests, too few to judge by)."""
        last = time.monotonic()
        while not self.stop.wait(tick):
            weights = self.weights()
            now = time.monotonic()
            elapsed, last = now - last, now
            with self.lock:
                for color, count in self.counts.items():
                    requests, errors, latency = self.traffic.served(
                        color, elapsed, weights, self.rng
                    )
                    refused = self.traffic.failed_at_load_balancer(color, requests, self.rng)
                    count["requests"] += requests - refused  # what reached the pods
                    count["errors"] += min(errors, requests - refused)
                    count["latency"] += (requests - refused) * latency
                    self.gateway["refused"] += refused
                    self.gateway["errors"] += min(errors, requests - refused)
                    self.gateway["served"] += requests - refused - min(errors, requests - refused)

    def __enter__(self) -> ColorExporter:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def prometheus_server(binary: str, target: str | None, folder: Path) -> Iterator[str]:
    """Prometheus on a free loopback port, scraping `target` every 250 ms (if any) and
    serving whatever `folder/data` already holds; yields its URL and stops it whatever
    happens."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    scrape = (
        f"scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
        if target
        else ""
    )
    config.write_text("global:\n  scrape_interval: 250ms\n  evaluation_interval: 250ms\n" + scrape)
    port = free_port()
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with local_server(command, f"{url}/-/ready", "prometheus"):
        yield url


def backfill(binary: str, openmetrics: str, folder: Path) -> None:
    """Write `openmetrics` (samples with timestamps in the past) into `folder/data` as TSDB
    blocks with the server's own `promtool`, for a Prometheus started on that folder."""
    source = folder / "backfill.om"
    folder.mkdir(parents=True, exist_ok=True)
    source.write_text(openmetrics)
    promtool = str(Path(binary).with_name("promtool"))
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source),
         str(folder / "data")],
        check=True,
        capture_output=True,
    )  # fmt: skip
