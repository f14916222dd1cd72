"""Rollback speed of the Gateway API router on the real API server, each figure beside its
floor in the same run.

Against kube-apiserver and etcd on 127.0.0.1 (the binaries `make cluster-tools` builds; started
as the tests start them, tests/harness/real_cluster.py), with the Gateway API CRDs and the
HTTPRoute the program declares. Both sides use the same admin token over one kept-alive TLS
connection each. Trials alternate between the two sides; medians. Prints one JSON object:

- restore_ratio: GatewayRouter.restore (a GET of the route for its resourceVersion, then one
  JSON patch conditional on it, through the kubernetes client) over the same two calls made
  bare with http.client: one GET, its resourceVersion read, one PATCH of the same operations
  (target <= 1.5). Before each trial of either side the route is moved away from the snapshot
  (not timed), so every restore is a real write;
- restore_over_one_patch: the same restore over one bare PATCH alone (what a restore that did
  not fence on the version read would cost; shown, not a target);
- restore_verify_ratio: restore, then read back until served, over the bare GET, PATCH and
  GET (target <= 1.5). No Gateway controller runs here, so the route's status is written once
  through its status subresource, as a Gateway writes it, and these trials restore a route
  that already holds the snapshot: the server still checks the precondition, and the route's
  generation (what the status speaks of) stays the one the status accepted.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cutover.kube import Api  # noqa: E402
from cutover.routers.gateway import GatewayRouter, weight_patch  # noqa: E402
from tests.harness.real_cluster import (  # noqa: E402
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    ControlPlane,
    apply_gateway_crds,
    control_plane,
    load_tools,
)

TRIALS = 101
NAMESPACE = "checkout"
ROUTE = {
    "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
    "kind": "HTTPRoute",
    "metadata": {"name": "checkout", "namespace": NAMESPACE},
    "spec": {
        "parentRefs": [{"name": "public", "namespace": "gateways"}],
        "rules": [
            {
                "backendRefs": [
                    {"name": "checkout-blue", "port": 80, "weight": 100},
                    {"name": "checkout-green", "port": 80, "weight": 0},
                ]
            }
        ],
    },
}
AWAY = [{"name": "checkout-blue", "weight": 60}, {"name": "checkout-green", "weight": 40}]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Bare:
    """GET and PATCH of the route with http.client on one kept-alive TLS connection."""

    def __init__(self, plane: ControlPlane) -> None:
        host, port = plane.url.removeprefix("https://").rsplit(":", 1)
        self.connection = http.client.HTTPSConnection(
            host, int(port), context=plane.ssl_context(), timeout=10
        )
        self.path = (
            f"/apis/{GATEWAY_GROUP}/{GATEWAY_VERSION}/namespaces/{NAMESPACE}/httproutes/checkout"
        )
        self.auth = f"Bearer {plane.token}"

    def _call(self, method: str, body: bytes | None = None, kind: str = "") -> bytes:
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = kind
        self.connection.request(method, self.path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {self.path}: {response.status} {data[:200]!r}")
        return data

    def get(self) -> dict[str, Any]:
        return dict(json.loads(self._call("GET")))

    def patch(self, operations: list[dict[str, Any]]) -> None:
        self._call("PATCH", json.dumps(operations).encode(), "application/json-patch+json")

    def status(self, status: dict[str, Any]) -> None:
        self.connection.request(
            "PATCH",
            self.path + "/status",
            body=json.dumps({"status": status}).encode(),
            headers={"Authorization": self.auth, "Content-Type": "application/merge-patch+json"},
        )
        response = self.connection.getresponse()
        response.read()
        assert response.status == 200, response.status


def accepted(generation: int) -> dict[str, Any]:
    """The status a Gateway writes for a route it has taken at `generation`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "parents": [
            {
                "parentRef": {"name": "public", "namespace": "gateways"},
                "controllerName": "example.com/gateway",
                "conditions": [
                    {
                        "type": kind,
                        "status": "True",
                        "reason": kind,
                        "message": "",
                        "observedGeneration": generation,
                        "lastTransitionTime": now,
                    }
                    for kind in ("Accepted", "ResolvedRefs")
                ],  # fmt: skip
            }
        ]
    }


def main() -> None:
    tools = load_tools(("etcd", "kube-apiserver", "gateway-api-crds"))
    with tempfile.TemporaryDirectory() as tmp, control_plane(tools, Path(tmp)) as plane:
        from kubernetes import client

        apply_gateway_crds(plane, tools["gateway-api-crds"].path)
        api = plane.client()
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GATEWAY_GROUP, GATEWAY_VERSION, NAMESPACE, "httproutes", ROUTE
        )
        os.environ["KUBECONFIG"] = str(plane.kubeconfig)
        router = GatewayRouter(
            NAMESPACE,
            "checkout",
            {"blue": "checkout-blue", "green": "checkout-green"},
            "prod/checkout",
            Api("CustomObjectsApi"),
        )
        snapshot = router.snapshot()
        restore_ops = weight_patch(snapshot["backendRefs"])
        bare = Bare(plane)

        def move_away() -> None:
            bare.patch(weight_patch(AWAY))

        def bare_get_patch() -> None:
            version = bare.get()["metadata"]["resourceVersion"]
            precondition = {"op": "replace", "path": "/metadata/resourceVersion", "value": version}
            bare.patch([precondition, *restore_ops])

        def bare_get_patch_get() -> None:
            bare_get_patch()
            bare.get()

        def restore_and_verify() -> None:
            router.restore(snapshot)
            while router.served() != {"blue": 100, "green": 0}:
                pass

        # warm both clients' connections and the server's caches
        for _ in range(3):
            move_away()
            router.restore(snapshot)
            bare_get_patch_get()
        restore, floor, patch = [], [], []
        for _ in range(TRIALS):
            move_away()
            restore.append(timed(lambda: router.restore(snapshot)))
            move_away()
            floor.append(timed(bare_get_patch))
            move_away()
            patch.append(timed(lambda: bare.patch(restore_ops)))
        bare.status(accepted(bare.get()["metadata"]["generation"]))
        verify, verify_floor = [], []
        for _ in range(TRIALS):
            verify.append(timed(restore_and_verify))
            verify_floor.append(timed(bare_get_patch_get))
        with contextlib.suppress(OSError):
            bare.connection.close()
        version = plane.get("/version")["gitVersion"]
    med = statistics.median
    print(
        json.dumps(
            {
                "server": f"kube-apiserver {version}, etcd {tools['etcd'].version}, 127.0.0.1",
                "restore_seconds": round(med(restore), 5),
                "bare_get_patch_seconds": round(med(floor), 5),
                "restore_ratio": round(med(restore) / med(floor), 2),
                "bare_patch_seconds": round(med(patch), 5),
                "restore_over_one_patch": round(med(restore) / med(patch), 2),
                "restore_verify_seconds": round(med(verify), 5),
                "bare_get_patch_get_seconds": round(med(verify_floor), 5),
                "restore_verify_ratio": round(med(verify) / med(verify_floor), 2),
                "trials": TRIALS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
