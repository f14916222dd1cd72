"""Zero downtime through the real data plane: benchmarks/zero_downtime.py's smaller version.

wrk drives paced keep-alive clients through the real Traefik Gateway while the real CLI shifts
the production stack's HTTPRoute on the real API server: a shift that the metric analysis
rolls back (green answers a tenth of its requests with an injected 500, read from Traefik's
series in a real Prometheus), then a shift 0 -> 100. Not one request may be dropped. The
benchmark runs as its own process (its own cluster and network namespace, beside the
session's), and every wait in it is on an event: a count of requests through the Gateway, a
route Traefik serves, a process's exit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.real_cluster import (
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    PROGRAM_TIMEOUT,
    RealCluster,
    binomial_bound,
    served_weights,
    wait_until,
)
from tests.harness.zero_downtime import Load, LoadSettings, set_error_share, wait_requests

ROOT = Path(__file__).resolve().parents[2]


def test_no_request_is_dropped_across_a_shift_and_a_rollback(tmp_path: Path) -> None:
    for tool in ("wrk", "prometheus"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH (apt-get install {tool})")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "zero_downtime.py"), "--quick"]
        + ["--tmp", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    figures = json.loads(result.stdout)
    phases = figures["phases"]
    assert figures["total"] >= 20_000, figures["total"]
    assert figures["failed"] == 0, {n: p["failedAt"] for n, p in phases.items()}
    assert all(p["failed"] == 0 for p in phases.values()), figures["failedByPhase"]

    rollback, shift = phases["rollback"], phases["shift"]
    assert rollback["status"] == "rolled-back"
    assert rollback["reason"].startswith("analysis: green error rate more than 1 point")
    # green's injected 500s reached the clients and were counted apart, never as dropped
    assert rollback["injected"] > 0 and rollback["servedBy"]["green"] > 0
    assert shift["status"] == "succeeded" and shift["steps"] == [50, 100]
    assert shift["servedBy"]["blue"] > 0 and shift["servedBy"]["green"] > 0
    assert shift["injected"] == 0
    # every request answered by a color or counted: none unaccounted for
    for phase in phases.values():
        assert sum(phase["servedBy"].values()) + phase["injected"] == phase["requests"]


def test_the_count_sees_what_the_gateway_drops(cluster: RealCluster, tmp_path: Path) -> None:
    """The measurement is not blind: through the same Traefik and the same wrk script, a route
    sending a tenth of its requests to a Service whose endpoint nothing listens on has those
    counted failed (the 502 Traefik answers), and the injected 500s of the color it sends the
    rest to counted injected, apart."""
    from kubernetes import client

    api = cluster.plane.client()
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    namespace, gone = cluster.namespace, "zd-gone"
    core.create_namespaced_service(
        namespace, {"metadata": {"name": gone}, "spec": {"ports": [{"name": "http", "port": 80}]}}
    )
    discovery.create_namespaced_endpoint_slice(
        namespace,
        {
            "metadata": {"name": gone, "labels": {"kubernetes.io/service-name": gone}},
            "addressType": "IPv4",
            # an address the backends' namespace has, on a port nothing listens on
            "endpoints": [{"addresses": [cluster.backends.address], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": 8099, "protocol": "TCP"}],
        },
    )
    services = {"green": cluster.services["green"], "gone": gone}
    weights = {"green": 9, "gone": 1}
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GATEWAY_GROUP,
        GATEWAY_VERSION,
        namespace,
        "httproutes",
        {
            "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
            "kind": "HTTPRoute",
            "metadata": {"name": "zd-control"},
            "spec": {
                "parentRefs": [{"name": cluster.gateway.name}],
                "hostnames": ["control.example.com"],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": services[c], "port": 80, "weight": w}
                            for c, w in weights.items()
                        ]
                    }
                ],
            },
        },
    )
    wait_until(
        lambda: served_weights(cluster.gateway, services) == weights,
        "Traefik serving the control route",
        PROGRAM_TIMEOUT,
        cluster.gateway.process,
    )
    requests = 3_000
    set_error_share(cluster, "green", 0.5)
    try:
        settings = LoadSettings(connections=4, pause_ms=0)
        with Load(cluster, settings, tmp_path / "wrk.log", host="control.example.com") as load:
            wait_requests(cluster, requests, "the control route", PROGRAM_TIMEOUT)
    finally:
        set_error_share(cluster, "green", 0.0)
    figures = load.result()
    total = figures["requests"]
    assert total >= requests
    assert set(figures["gatewayStatuses"]) == {"502"}, figures
    dropped = figures["gatewayStatuses"]["502"]
    assert figures["failed"] == dropped
    assert abs(dropped - total / 10) <= binomial_bound(total, 0.1), figures
    served = figures["servedBy"]["green"]
    # every other green answer, but for the requests in flight when wrk stopped
    assert abs(figures["injected"] - served) <= settings.connections + 1, figures
    assert dropped + served + figures["injected"] == total
