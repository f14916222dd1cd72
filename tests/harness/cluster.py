"""A Gateway stack's cluster for the helper's tests: the local API server holding the HTTPRoute
and Deployments the program declares, and the journal's ConfigMaps and Leases."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cutover.deployment import scope_of
from tests.harness.cli_runs import run_cutover, spawn_cutover, wait_for
from tests.harness.kube_api import KubeApi, kube_api_server, write_kubeconfig
from tests.harness.program_runs import declare, kubernetes_config
from tests.harness.records import signed_records

NS = "checkout"
FAST = ["--bake", "0.3s", "--interval", "0.05s"]
KINDS = ("approval", "security-signoff", "rollback-drill")


@dataclass
class Cluster:
    api: KubeApi
    env: dict[str, str]
    outputs: Path
    gates: Path
    records: Path
    deploy_key: Path
    program: dict[str, Any]  # what the program declared: route and deployments by name
    tmp: Path

    def reset(self, tmp: Path) -> None:
        self.tmp = tmp
        with self.api.lock:
            self.api.routes.clear()
            self.api.deployments.clear()
            self.api.objects.clear()
            self.api.requests.clear()
            self.api.accept_after = 0.0
            self.api.interfere = self.api.unavailable = 0
            self.api.add_route(self.program["route"])
            for deployment in self.program["deployments"]:
                self.api.add_deployment(deployment)
            for job in self.program["cronJobs"]:
                meta = job["metadata"]
                self.api.objects["cronjobs", meta["namespace"], meta["name"]] = {
                    **job,
                    "metadata": {**meta, "resourceVersion": "1"},
                }

    def cutover(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cutover(list(args), self.env, self.tmp)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return spawn_cutover(list(args), self.env, self.tmp)

    def stepped(self, process: subprocess.Popen[str]) -> None:
        """Wait until the shift in `process` has served its first step."""
        wait_for(
            lambda: any(e["type"] == "step" for d in self.deployments() for e in d["events"]),
            60,
            "the first step",
            process,
        )

    def args(self, *args: str) -> list[str]:
        """The stack's own journal: ConfigMaps and Leases in its namespace."""
        return [*args, "--outputs", str(self.outputs)]

    def shift(self, *extra: str, to: str = "green") -> list[str]:
        gates = ["--gates-config", str(self.gates), "--records", str(self.records)]
        return self.args("shift", "--to", to, *gates, *extra)

    def weights(self) -> dict[str, int]:
        named = self.api.weights(NS, "checkout")
        return {"blue": named["checkout-blue"], "green": named["checkout-green"]}

    def set_weights(self, weights: dict[str, int]) -> None:
        with self.api.lock:
            for ref in self.api.routes[(NS, "checkout")]["spec"]["rules"][0]["backendRefs"]:
                ref["weight"] = weights[ref["name"].rsplit("-", 1)[1]]

    def deployments(self) -> list[dict[str, Any]]:
        with self.api.lock:
            found = [
                json.loads(obj["data"]["deployment.json"])
                for (plural, ns, name), obj in self.api.objects.items()
                if plural == "configmaps" and name.startswith("cutover-deployment-")
            ]
        return sorted(found, key=lambda d: d["id"])

    def lease(self, holder: str, host: str, pid: int, renewed: datetime) -> None:
        """A lock on the route held by someone else."""
        key = ("leases", NS, f"cutover-lock-{scope_of(['httproute/checkout/checkout'])}")
        info = {"holder": holder, "deployment": "20261126T000000Z-0000aa", "who": "ana"}
        with self.api.lock:
            self.api.objects[key] = {
                "metadata": {
                    "name": key[2],
                    "namespace": NS,
                    "resourceVersion": "7",
                    "annotations": {
                        "cutover/holder": json.dumps({**info, "host": host, "pid": pid})
                    },
                },
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": 30,
                    "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
            }


@contextlib.contextmanager
def gateway_cluster(
    base: Path, analysis: dict[str, Any], api: KubeApi | None = None
) -> Iterator[Cluster]:
    """The production Gateway stack declared by the program (with `analysis` as its
    cutover:analysis), signed records, and the local API server; AWS unreachable on purpose."""
    config = kubernetes_config(active="blue", percent=100)
    config["cutover:analysis"] = analysis
    run = declare(config)
    outputs = base / "outputs.json"
    outputs.write_text(json.dumps(run.outputs))
    program = {
        "route": next(r.state for r in run.resources if r.type.endswith(":HTTPRoute")),
        "deployments": [
            r.state for r in run.resources if r.type == "kubernetes:apps/v1:Deployment"
        ],
        "cronJobs": [r.state for r in run.resources if r.type == "kubernetes:batch/v1:CronJob"],
    }
    records = base / "records"
    records.mkdir()
    gates, deploy_key = signed_records(records)
    api = api or KubeApi()
    with kube_api_server(api) as server:
        env = {
            "KUBECONFIG": str(write_kubeconfig(base / "kubeconfig", server)),
            "CUTOVER_KUBE_READ_TIMEOUT": "2",
            # a Gateway stack makes no AWS call; any attempt fails fast on a closed local port
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_ACCESS_KEY_ID": "none",
            "AWS_SECRET_ACCESS_KEY": "none",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
        yield Cluster(api, env, outputs, gates, records, deploy_key, program, base)
