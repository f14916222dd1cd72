"""A rehearsal stack in moto's server for the helper's tests, reached through a fault proxy.

The stacks are created by the Pulumi program (rehearsal.aws); the `cutover` CLI runs as a
real process with AWS_ENDPOINT_URL pointing at the proxy; assertions read moto directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from cutover_gates.record import load_private_key

from rehearsal.aws import aws_env, moto_server, sign_gates
from tests.harness.cli_runs import run_cutover, spawn_cutover, wait_for
from tests.harness.fault_proxy import FaultProxy
from tests.harness.program_runs import ROOT
from tests.harness.records import write_signed_records

CAPACITY = 6


@dataclass
class AwsStack:
    endpoint: str  # moto itself
    proxy: FaultProxy
    env: dict[str, str]  # for the CLI: through the proxy
    outputs: dict[str, Path]  # service -> outputs file
    data: dict[str, dict[str, Any]]
    gates_config: Path
    records: Path
    keys: Path
    tmp: Path
    queues: dict[str, str] = field(default_factory=dict)

    def add_service(self, service: str, analysis_period: int | None = None) -> None:
        """Provision a second service of the release train (once per session); with
        `analysis_period`, its analysis judges windows of that many seconds."""
        if service not in self.outputs:
            self.outputs[service] = self.tmp.parent / f"{service}-outputs.json"
            _provision(self.endpoint, service, self.outputs[service], analysis_period)
            self.data[service] = json.loads(self.outputs[service].read_text())
            self.reset()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="eu-west-1",
            aws_access_key_id="t",
            aws_secret_access_key="t",
        )

    def served(self, service: str = "checkout") -> dict[str, int]:
        listener = self.client("elbv2").describe_listeners(
            ListenerArns=[self.data[service]["listenerArn"]]
        )["Listeners"][0]
        groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        color = {v: k for k, v in self.data[service]["targetGroupArns"].items()}
        return {color[g["TargetGroupArn"]]: g["Weight"] for g in groups}

    def forward_config(self, service: str = "checkout") -> dict[str, Any]:
        listener = self.client("elbv2").describe_listeners(
            ListenerArns=[self.data[service]["listenerArn"]]
        )["Listeners"][0]
        return dict(listener["DefaultActions"][0]["ForwardConfig"])

    def set_weights(
        self, weights: dict[str, int], sticky: bool = False, service: str = "checkout"
    ) -> None:
        arns = self.data[service]["targetGroupArns"]
        self.client("elbv2").modify_listener(
            ListenerArn=self.data[service]["listenerArn"],
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": arns[c], "Weight": w} for c, w in weights.items()
                        ],
                        "TargetGroupStickinessConfig": {"Enabled": sticky, "DurationSeconds": 60}
                        if sticky
                        else {"Enabled": False},
                    },
                }
            ],
        )

    def topic_messages(self, service: str = "checkout") -> list[dict[str, Any]]:
        """Deployment events published to the stack's topic (through an SQS subscription)."""
        if service not in self.queues:
            sqs = self.client("sqs")
            url = sqs.create_queue(QueueName=f"{service}-events")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.client("sns").subscribe(
                TopicArn=self.data[service]["topicArn"],
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"RawMessageDelivery": "true"},
            )
            self.queues[service] = url
            return []
        messages = []
        while True:
            batch = self.client("sqs").receive_message(
                QueueUrl=self.queues[service], MaxNumberOfMessages=10
            )
            if not batch.get("Messages"):
                return messages
            for m in batch["Messages"]:
                messages.append(json.loads(m["Body"]))
                self.client("sqs").delete_message(
                    QueueUrl=self.queues[service], ReceiptHandle=m["ReceiptHandle"]
                )

    def alarm(self, name: str, state: str = "ALARM") -> None:
        self.client("cloudwatch").set_alarm_state(
            AlarmName=name, StateValue=state, StateReason="test"
        )

    def targets(self, color: str, count: int, service: str = "checkout") -> None:
        """Exactly `count` healthy targets in the color's target group."""
        elbv2 = self.client("elbv2")
        arn = self.data[service]["targetGroupArns"][color]
        current = [
            t["Target"]
            for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        ]
        if current:
            elbv2.deregister_targets(
                TargetGroupArn=arn, Targets=[{"Id": t["Id"], "Port": t["Port"]} for t in current]
            )
        if count:
            base = 3 if color == "blue" else 4
            elbv2.register_targets(
                TargetGroupArn=arn,
                Targets=[{"Id": f"10.0.{base}.{10 + i}", "Port": 8080} for i in range(count)],
            )

    def reset(self) -> None:
        self.proxy.clear()
        for data in self.data.values():  # a fresh DynamoDB journal too
            db, table = self.client("dynamodb"), data["journalTable"]
            for item in db.scan(TableName=table)["Items"]:
                db.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
        self.topic_messages()  # subscribe once, then drain what earlier tests published
        for service, data in self.data.items():
            self.set_weights({"blue": 100, "green": 0}, service=service)
            for color in ("blue", "green"):
                self.targets(color, CAPACITY, service)
                for name in data["alarmNames"][color]:
                    self.alarm(name, "OK")
                svc = data["services"][color]
                self.client("ecs").update_service(
                    cluster=svc["cluster"], service=svc["service"], desiredCount=CAPACITY
                )

    def journal(self) -> str:
        return f"file:{self.tmp / 'journal.json'}"

    def args(self, *args: str, service: str = "checkout") -> list[str]:
        return [*args, "--outputs", str(self.outputs[service]), "--journal", self.journal()]

    def gate_args(self) -> list[str]:
        return ["--gates-config", str(self.gates_config), "--records", str(self.records)]

    def cutover(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cutover(list(args), {**self.env, **(env or {})}, self.tmp, timeout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return spawn_cutover(list(args), self.env, self.tmp)

    def deployments(self) -> list[dict[str, Any]]:
        path = self.tmp / "journal.json"
        if not path.exists():
            return []
        return sorted(json.loads(path.read_text())["deployments"].values(), key=lambda d: d["id"])

    def wait_for(self, predicate: Any, timeout: float = 30, what: str = "condition") -> None:
        wait_for(predicate, timeout, what)

    def leases(self, service: str = "checkout") -> list[float]:
        """When each lease in the stack's DynamoDB journal runs out (epoch seconds)."""
        table = self.data[service]["journalTable"]
        items = self.client("dynamodb").scan(TableName=table)["Items"]
        return [float(i["leaseUntil"]["N"]) for i in items if i["pk"]["S"].startswith("lock#")]

    def outlive_leases(self, service: str = "checkout") -> None:
        """Wait until every lease in the journal has run out (by this machine's clock)."""
        self.wait_for(
            lambda: all(until <= time.time() for until in self.leases(service)),
            timeout=60,
            what="the leases to run out",
        )


def _provision(endpoint: str, service: str, out: Path, analysis_period: int | None = None) -> None:
    args = [sys.executable, "-m", "rehearsal.aws", "--stack", "prod", "--out", str(out)]
    if service != "checkout":
        args += ["--service-name", service]
    if analysis_period is not None:
        args += ["--analysis-period", str(analysis_period)]
    subprocess.run(args, check=True, cwd=ROOT, env={**os.environ, **aws_env(endpoint)}, timeout=300)


def _cli(env: dict[str, str], cwd: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "cutover", *args],
        check=True,
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def aws_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsStack]:
    base = tmp_path_factory.mktemp("aws")
    with moto_server() as endpoint:
        proxy = FaultProxy(endpoint, delay=1.3)
        env = {
            **aws_env(proxy.endpoint),
            "CUTOVER_AWS_READ_TIMEOUT": "1",
            "CUTOVER_AWS_CONNECT_TIMEOUT": "1",
        }
        outputs = {"checkout": base / "checkout-outputs.json"}
        _provision(endpoint, "checkout", outputs["checkout"])
        signed = sign_gates(base, lambda *args: _cli(env, base, *args))
        gates, records, keys = signed.config, signed.records, signed.keys
        # drill records as `cutover drill` writes them (the drill itself is tested on its own)
        deploy = load_private_key((keys / "deploy.key").read_bytes())
        write_signed_records(records, {"rollback-drill": deploy}, name="{color}-drill")
        data = {s: json.loads(p.read_text()) for s, p in outputs.items()}
        try:
            yield AwsStack(endpoint, proxy, env, outputs, data, gates, records, keys, base)
        finally:
            proxy.close()


@pytest.fixture
def aws(aws_session: AwsStack, tmp_path: Path) -> AwsStack:
    """The session's stacks reset to blue 100 / green 0, healthy, alarms OK, with a fresh journal."""
    aws_session.reset()
    aws_session.tmp = tmp_path
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    return aws_session
