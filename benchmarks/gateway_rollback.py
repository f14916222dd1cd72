"""Rollback speed of the Gateway API router, each figure beside its floor in the same run.

Against the local API server of the tests (tests/kube_api.py) on 127.0.0.1, holding the
HTTPRoute the program declares. Medians over repeated trials. Prints one JSON object:

- restore_ratio: GatewayRouter.restore (a GET of the route for its resourceVersion, then one
  JSON patch conditional on it, through the kubernetes client), over the same two calls made
  bare with urllib: one GET, one PATCH of the same body (target <= 1.5);
- restore_over_one_patch: the same restore over one bare PATCH alone (what a restore that did
  not fence on the version read would cost; shown, not a target);
- restore_verify_ratio: restore, then read back until served, over the bare GET, PATCH and
  GET (target <= 1.5).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cutover.routers.gateway import GatewayRouter, weight_patch  # noqa: E402
from tests.harness.kube_api import KubeApi, kube_api_server, write_kubeconfig  # noqa: E402

TRIALS = 51
ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "checkout", "namespace": "checkout"},
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


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    api = KubeApi()
    api.add_route(ROUTE)
    with kube_api_server(api) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["KUBECONFIG"] = str(write_kubeconfig(Path(tmp) / "kubeconfig", server))
        router = GatewayRouter(
            "checkout",
            "checkout",
            {"blue": "checkout-blue", "green": "checkout-green"},
            "prod/checkout",
        )
        snapshot = router.snapshot()
        path = f"{server}/apis/gateway.networking.k8s.io/v1/namespaces/checkout/httproutes/checkout"
        body = json.dumps(weight_patch(snapshot["backendRefs"])).encode()

        def bare_patch() -> None:
            request = urllib.request.Request(
                path,
                data=body,
                method="PATCH",
                headers={
                    "Content-Type": "application/json-patch+json",
                    "Authorization": "Bearer local-token",
                },
            )
            with urllib.request.urlopen(request) as response:  # noqa: S310 - 127.0.0.1 only
                response.read()

        def bare_get() -> None:
            with urllib.request.urlopen(path) as response:  # noqa: S310
                response.read()

        def restore_and_verify() -> None:
            router.restore(snapshot)
            while router.served() != {"blue": 100, "green": 0}:
                pass

        router.restore(snapshot)  # warm both clients' connections
        bare_patch()
        restore, patch, floor, verify, verify_floor = [], [], [], [], []
        for _ in range(TRIALS):
            restore.append(timed(lambda: router.restore(snapshot)))
            patch.append(timed(bare_patch))
            floor.append(timed(lambda: (bare_get(), bare_patch())))
            verify.append(timed(restore_and_verify))
            verify_floor.append(timed(lambda: (bare_get(), bare_patch(), bare_get())))
    med = statistics.median
    print(
        json.dumps(
            {
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
