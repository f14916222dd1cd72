"""The helper on a Kubernetes stack with alb routing: the ALB, its alarms and journal table in
moto's server (created by the program, rehearsal.aws), the Deployments on the real API server
(tests/harness/cluster.py). ALB weights and CloudWatch guards as on ECS, ready replicas from
the cluster, read as a CI ServiceAccount bound to the program's helper Role.

The program's TargetGroupBinding is not installed: its CRD belongs to the AWS Load Balancer
Controller, which does not run here (moto's ALB has no controller to register pods either).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from rehearsal.aws import aws_env, moto_server
from tests.harness.cli_runs import run_cutover, spawn_cutover, wait_for
from tests.harness.cluster import Call, KubeCluster, provider_numbers
from tests.harness.program_runs import ROOT, declare, kubernetes_config
from tests.harness.records import signed_records

NS = "checkout-alb"  # its own namespace: the Gateway stacks' tests use `checkout`
ACCOUNT = "cutover-ci"  # the identity that runs `cutover shift`, bound to the helper Role


@dataclass
class Hybrid:
    kube: KubeCluster
    since: int  # the audit log's length when the module began
    env: dict[str, str]
    outputs: dict[str, Any]
    args: list[str]
    tmp: Path

    def aws(self, service: str) -> Any:
        return boto3.client(service, **_boto(self.env))

    def served(self) -> dict[str, int]:
        listener = self.aws("elbv2").describe_listeners(ListenerArns=[self.outputs["listenerArn"]])
        groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        color = {arn: c for c, arn in self.outputs["targetGroupArns"].items()}
        return {color[g["TargetGroupArn"]]: g["Weight"] for g in groups}

    def cutover(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cutover([*args, *self.args], self.env, self.tmp)

    def calls(self) -> list[Call]:
        user = f"system:serviceaccount:{NS}:{ACCOUNT}"
        return [c for c in self.kube.calls(self.since) if c.user == user]


def _boto(env: dict[str, str]) -> dict[str, str]:
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture(scope="module")
def hybrid(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hybrid]:
    base = tmp_path_factory.mktemp("hybrid")
    stack = yaml.safe_load((ROOT / "examples" / "kubernetes" / "Pulumi.prod.yaml").read_text())
    cluster = stack["config"]["cutover:kubernetes"]
    cluster.update(routing="alb", namespace=NS)
    del cluster["gateway"], cluster["hostnames"]
    del stack["config"]["cutover:analysis"]["prometheus"]  # on the ALB: CloudWatch's metrics
    (base / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    records = base / "records"
    records.mkdir()
    gates, _ = signed_records(records)
    config = kubernetes_config(active="blue", percent=100, routing="alb")
    config["cutover:kubernetes"]["namespace"] = NS
    declared = declare(config)
    kube.ensure_namespace(NS)
    for r in declared.resources:
        if r.type.startswith("kubernetes:") and not r.type.endswith(":TargetGroupBinding"):
            kube.apply(provider_numbers(r.state))
    kube.wait_ready(NS)
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": ACCOUNT, "namespace": NS}})  # fmt: skip
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": ACCOUNT, "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "cutover-helper"},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NS}],
        }
    )  # fmt: skip
    kubeconfig = kube.kubeconfig(base / "kubeconfig", kube.token(NS, ACCOUNT))
    with moto_server() as endpoint:
        env = {**aws_env(endpoint), "KUBECONFIG": str(kubeconfig)}
        out = base / "outputs.json"
        subprocess.run(
            [sys.executable, "-m", "rehearsal.aws", "--stack", "prod"]
            + ["--stack-file", str(base / "Pulumi.prod.yaml"), "--out", str(out)],
            check=True,
            cwd=ROOT,
            env={**os.environ, **env},
            timeout=300,
        )
        args = ["--outputs", str(out), "--gates-config", str(gates), "--records", str(records)]
        yield Hybrid(kube, kube.audit_offset(), env, json.loads(out.read_text()), args, base)


def test_alb_routing_shifts_on_the_alb_and_watches_the_deployments(hybrid: Hybrid) -> None:
    assert hybrid.outputs["platform"] == "kubernetes"
    assert hybrid.outputs["services"]["green"]["deployment"] == "checkout-green"
    result = hybrid.cutover(
        "shift", "--to", "green", "--steps", "50,100", "--bake", "0.3s", "--interval", "0.05s"
    )
    assert result.returncode == 0, result.stderr
    assert hybrid.served() == {"blue": 0, "green": 100}
    # ready replicas came from the cluster, read as the helper Role allows; the journal is
    # the stack's DynamoDB table
    calls = hybrid.calls()
    assert any(c.resource == "deployments" and c.name == "checkout-green" for c in calls)
    assert {c.code for c in calls} == {200}, [str(c) for c in calls]
    items = hybrid.aws("dynamodb").scan(TableName=hybrid.outputs["journalTable"])["Items"]
    assert any(i["pk"]["S"].startswith("deploy#") for i in items)

    # back to blue, and an alarm on blue's target group firing mid-bake gives traffic back
    process = spawn_cutover(
        ["shift", "--to", "blue", "--steps", "50,100", "--bake", "30s", "--interval", "0.05s"]
        + hybrid.args,
        hybrid.env,
        hybrid.tmp,
    )
    wait_for(lambda: hybrid.served() == {"blue": 50, "green": 50}, 60, "the first step", process)
    hybrid.aws("cloudwatch").set_alarm_state(
        AlarmName=hybrid.outputs["alarmNames"]["blue"][0], StateValue="ALARM", StateReason="test"
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "alarms: in ALARM" in err
    assert hybrid.served() == {"blue": 0, "green": 100}
