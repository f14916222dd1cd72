"""The production Gateway stack on the real cluster, a real Prometheus reading Traefik, and wrk
driving keep-alive traffic through the Gateway: what benchmarks/zero_downtime.py measures
requests dropped with, and tests/e2e/test_zero_downtime.py checks.

The stack is what the program declares (run under the SDK's mocks, as `pulumi preview` would
run it) for the cluster's Gateway: its outputs are the `pulumi stack output --json` the CLI
reads, its HTTPRoute and Deployments are created on the real API server. No kubelet runs, so
the harness writes each Deployment's status (every replica ready) itself; the replicas behind
each color are the one backend process of tests/harness/color_backend.py that the cluster's
EndpointSlice names.

Traefik exports per-service series named `<namespace>-<Service>-<port name>-<port>@kubernetesgateway`
(the real label, read from a running Traefik: `checkout-checkout-blue-http-80@kubernetesgateway`),
and the analysis's PromQL templates read them by the color's Service.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.cli_runs import NO_AWS, OUTLIVED
from tests.harness.cluster import mark_ready, provider_numbers
from tests.harness.color_backend import CONTROL, INJECTED, LATENCY
from tests.harness.real_cluster import (
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    PROGRAM_TIMEOUT,
    RealCluster,
    served_weights,
    wait_until,
)

LUA = Path(__file__).with_name("zero_downtime.lua")
HOST = "checkout.example.com"  # the route's hostname, as the program declares it
# Traefik's per-service series of a color's Service (the harness names its port `http`).
SERVICE = 'service="$namespace-$service-http-80@kubernetesgateway"'
ROUTE = 'service=~"$namespace-($services)-http-80@kubernetesgateway"'  # both colors'
TRAEFIK_QUERIES = {
    "requests": f"sum(increase(traefik_service_requests_total{{{SERVICE}}}[$window]))",
    "errors": f'sum(increase(traefik_service_requests_total{{{SERVICE},code=~"5.."}}[$window]))',
    "latency": "histogram_quantile($quantile, sum by (le) (rate("
    f"traefik_service_request_duration_seconds_bucket{{{SERVICE}}}[$window])))",
    # the downtime guard's: both colors' series, failed where Traefik answers for a backend it
    # could not reach (502, 503, 504), never the colors' injected 500s (the analysis's)
    "gatewayRequests": f"sum(increase(traefik_service_requests_total{{{ROUTE}}}[$window]))",
    "gatewayErrors": f'sum(increase(traefik_service_requests_total{{{ROUTE},code=~"502|503|504"}}'
    "[$window]))",
}
# A driver that is to be outlived (tests/harness/cli_runs.py), its reads bounded too so that
# the short lease covers one write (2 attempts of 1 + 2 s).
CLI_ENV = {**OUTLIVED, "CUTOVER_KUBE_READ_TIMEOUT": "2", **NO_AWS, "USER": "bench"}


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class Stack:
    """The production Gateway stack on `cluster`: its outputs, gate records and the CLI's
    environment (the cluster's kubeconfig)."""

    cluster: RealCluster
    outputs: Path
    gates: Path
    records: Path
    approval_key: Any
    env: dict[str, str]
    tmp: Path
    approvals: int = 0

    def cutover(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cutover", *args, "--outputs", str(self.outputs)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.tmp,
            timeout=timeout,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "cutover", *args, "--outputs", str(self.outputs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.tmp,
            start_new_session=True,
        )

    def shift_args(self, to: str, *extra: str) -> list[str]:
        gates = ["--gates-config", str(self.gates), "--records", str(self.records)]
        return ["shift", "--to", to, *gates, *extra]

    def watchdog_pass(self) -> subprocess.CompletedProcess[str]:
        """One `cutover watchdog --once` as the CronJob's pod runs it: on a host of its own (a
        UTS namespace named cutover-watchdog), so a dead driver's lease is taken over only once
        it expires, never through the same-host shortcut."""
        args = [sys.executable, "-m", "cutover", "watchdog", "--once"]
        script = 'hostname cutover-watchdog && exec "$@"'
        return subprocess.run(
            ["unshare", "--uts", "sh", "-c", script, "sh", *args, "--outputs", str(self.outputs)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.tmp,
            timeout=120,
        )

    def approve_again(self, color: str) -> None:
        """A release rolled back on this stack moves again only with an approval issued since
        (every door's gate): the chairman signs `color`'s again."""
        from datetime import UTC, datetime

        from tests.harness.records import record

        self.approvals += 1
        document = record("approval", color, key=self.approval_key, issued=datetime.now(UTC))
        (self.records / f"{color}-approval-{self.approvals}.json").write_text(json.dumps(document))

    def deployments(self) -> list[dict[str, Any]]:
        """The journal's deployments (ConfigMaps in the namespace), oldest first."""
        from kubernetes import client

        core = client.CoreV1Api(self.cluster.plane.client())
        found = [
            json.loads(item.data["deployment.json"])
            for item in core.list_namespaced_config_map(self.cluster.namespace).items
            if item.metadata.name.startswith("cutover-deployment-")
        ]
        return sorted(found, key=lambda d: d["id"])

    def served(self) -> dict[str, int] | None:
        """The weights Traefik's loaded configuration serves."""
        return served_weights(self.cluster.gateway, self.cluster.services)

    def wait_served(self, weights: dict[str, int], timeout: float = PROGRAM_TIMEOUT) -> None:
        wait_until(
            lambda: self.served() == weights,
            f"Traefik serving {weights}",
            timeout,
            self.cluster.gateway.process,
        )


def signed(records: Path) -> tuple[Path, Any]:
    """Approval, sign-off and drill records for both colors, each kind signed by a key of its
    own, and the pack config trusting them; returns the config and the approval key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cutover_gates.contract import KINDS
    from cutover_gates.keys import public_key_text

    from cutover.preflight import pack_config_trusting
    from tests.harness.records import write_signed_records

    records.mkdir(parents=True, exist_ok=True)
    keys = {kind: Ed25519PrivateKey.generate() for kind in KINDS}
    write_signed_records(records, keys)
    gates = records.parent / "gates.json"
    trusted = {kind: public_key_text(key.public_key()) for kind, key in keys.items()}
    gates.write_text(json.dumps(pack_config_trusting(trusted)))
    return gates, keys["approval"]


def deploy_stack(cluster: RealCluster, analysis: dict[str, Any], tmp: Path) -> Stack:
    """Declare the production Gateway stack for `cluster`'s Gateway (blue serving 100%), create
    its HTTPRoute and Deployments on the real API server, mark every replica ready, and wait
    until Traefik serves the route."""
    from kubernetes import client

    from tests.harness.program_runs import declare, kubernetes_config

    config = kubernetes_config(active="blue", percent=100)
    gateway = cluster.gateway
    config["cutover:kubernetes"]["gateway"] = {"name": gateway.name, "namespace": gateway.namespace}
    config["cutover:kubernetes"]["hostnames"] = [HOST]
    config["cutover:analysis"] = analysis
    run = declare(config)
    outputs = tmp / "outputs.json"
    outputs.write_text(json.dumps(run.outputs))

    api = cluster.plane.client()
    apps, objects = client.AppsV1Api(api), client.CustomObjectsApi(api)
    for resource in run.resources:
        if resource.type != "kubernetes:apps/v1:Deployment":
            continue
        body = provider_numbers(resource.state)
        created = apps.create_namespaced_deployment(cluster.namespace, body)
        mark_ready(apps, created, body["spec"]["replicas"])  # as if its pods were ready
    route = provider_numbers(next(r.state for r in run.resources if r.type.endswith(":HTTPRoute")))
    objects.create_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, cluster.namespace, "httproutes", route
    )
    records = tmp / "records"
    gates, approval_key = signed(records)
    env = {**os.environ, "KUBECONFIG": str(cluster.plane.kubeconfig), **CLI_ENV}
    stack = Stack(cluster, outputs, gates, records, approval_key, env, tmp)
    stack.wait_served({"blue": 100, "green": 0})
    return stack


# -- the backends and the Gateway's own counts --------------------------------------------------


def control(cluster: RealCluster, color: str, path: str, value: float) -> None:
    """PUT `value` to one of `color`'s backend's controls, on its own address."""
    backends = cluster.backends
    request = urllib.request.Request(
        f"http://{backends.address}:{backends.ports[color]}{path}",
        data=str(value).encode(),
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def set_error_share(cluster: RealCluster, color: str, share: float) -> None:
    """Make `color`'s backend answer `share` of its requests with an injected 500."""
    control(cluster, color, CONTROL, share)


def set_latency(cluster: RealCluster, seconds: float) -> None:
    """Make every backend hold each answer `seconds`: requests in flight at every flip."""
    for color in cluster.backends.ports:
        control(cluster, color, LATENCY, seconds)


def gateway_requests(cluster: RealCluster) -> float:
    """Requests Traefik's web entry point has answered so far (its own counter)."""
    port = cluster.gateway.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("traefik_entrypoint_requests_total{") and 'entrypoint="web"' in line
    )


def wait_requests(cluster: RealCluster, count: int, what: str, timeout: float) -> None:
    """Until the Gateway has answered `count` more requests than now: load measured in
    requests that went through, never in seconds slept."""
    start = gateway_requests(cluster)
    wait_until(
        lambda: gateway_requests(cluster) >= start + count,
        f"{count} requests through the Gateway ({what})",
        timeout,
        cluster.gateway.process,
    )


# -- the load -----------------------------------------------------------------------------------


@dataclass
class LoadSettings:
    connections: int = 20
    threads: int = 2
    pause_ms: int = 8  # each connection's wait before each request
    timeout: str = "5s"  # a request unanswered this long counts as failed (a timeout)


@dataclass
class Load:
    """wrk running until stopped, through the Gateway with the route's Host header."""

    cluster: RealCluster
    settings: LoadSettings
    log: Path
    host: str = HOST
    popen: subprocess.Popen[str] | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> Load:
        wrk = shutil.which("wrk")
        if wrk is None:
            raise RuntimeError("wrk is not on PATH (apt-get install wrk)")
        s = self.settings
        args = [
            wrk, f"-t{s.threads}", f"-c{s.connections}", "-d1h", f"--timeout={s.timeout}",
            "-H", f"Host: {self.host}", "-s", str(LUA), f"{self.cluster.gateway.url}/",
            "--", str(s.pause_ms), INJECTED,
        ]  # fmt: skip
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        # Started: every connection has been answered at least once.
        wait_requests(self.cluster, s.connections, "wrk connected", PROGRAM_TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        """SIGINT: wrk stops, joins its threads and prints its figures (kept in the log)."""
        popen = self.popen
        if popen is None:
            return
        if popen.poll() is None:
            popen.send_signal(signal.SIGINT)
        try:
            out, _ = popen.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            out, _ = popen.communicate()
        self.log.write_text(out)
        line = next((x for x in out.splitlines() if x.startswith("ZERO-DOWNTIME ")), None)
        if line is not None:
            self.figures = json.loads(line.removeprefix("ZERO-DOWNTIME "))

    def result(self) -> dict[str, Any]:
        """The phase's figures (after the `with`): `tally` of what wrk printed."""
        if not self.figures:
            raise RuntimeError(f"wrk printed no figures; its output:\n{self.log.read_text()}")
        return tally(self.figures)


def tally(figures: dict[str, Any]) -> dict[str, Any]:
    """One phase's requests from wrk's figures: `failed` are the requests the flip dropped (a
    socket error, a timeout, or an answer neither a color's 200 nor an injected 500)."""
    counts = figures["counts"]
    sockets = {k: figures[k] for k in ("connectErrors", "readErrors", "writeErrors", "timeouts")}
    statuses = {k.split()[1]: v for k, v in counts.items() if k.startswith("status ")}
    served = {k.split(" ", 1)[1]: v for k, v in counts.items() if k.startswith("ok ")}
    injected = counts.get("injected", 0)
    attempted = figures["responses"] + sum(
        figures[k] for k in ("connectErrors", "readErrors", "writeErrors")
    )
    seconds = figures["durationMicros"] / 1e6
    micros = figures["latencyMicros"]
    return {
        "requests": attempted,
        "failed": sum(sockets.values()) + sum(statuses.values()),
        "injected": injected,
        "socketErrors": sockets,
        "gatewayStatuses": statuses,
        "servedBy": served,
        "seconds": round(seconds, 1),
        "perSecond": round(attempted / seconds) if seconds else 0,
        # Little's law: the requests in flight at any moment, so at every flip
        "inFlight": round(attempted / seconds * figures["latencyMeanMicros"] / 1e6, 1)
        if seconds
        else 0,
        "latencyMs": {
            "p50": round(micros["50"] / 1000, 2),
            "p99": round(micros["99"] / 1000, 2),
            "p99.9": round(micros["99.9"] / 1000, 2),
            "max": round(figures["latencyMaxMicros"] / 1000, 2),
        },
        "failedAt": figures["failedAt"],
    }


@contextlib.contextmanager
def prometheus_on_traefik(cluster: RealCluster, folder: Path) -> Iterator[str]:
    """A real Prometheus (Debian's) scraping Traefik's metrics entry point every 250 ms; yields
    its URL once it has scraped Traefik."""
    from tests.harness.prometheus import prometheus_server

    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("the prometheus server is not on PATH (apt-get install prometheus)")
    target = f"127.0.0.1:{cluster.gateway.metrics_port}"
    with prometheus_server(binary, target, folder) as url:

        def scraped() -> bool:
            query = urllib.parse.urlencode({"query": 'up{job="app"} == 1'})
            with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as r:
                return bool(json.load(r)["data"]["result"])

        wait_until(scraped, "Prometheus scraping Traefik", PROGRAM_TIMEOUT)
        yield url
