"""A local rehearsal of a stack on an embedded AWS (moto's server on 127.0.0.1).

The stack's traffic resources are created by the Pulumi program itself: it runs under the
SDK's mocks, and the mocks' `new_resource` creates each load balancer, target group, listener,
alarm, topic, table, cluster and service through boto3 at the endpoint, returning the real
ARNs. So the rehearsal has one topology, the program's, never a second hand-written copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cutover.preview.program import ProgramMocks, run_program
from cutover.stack_config import stack_config

ROOT = Path(__file__).resolve().parents[1]

REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment that points boto3 (and the `cutover` CLI) at `endpoint` with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def wait_until_up(
    url: str, what: str, alive: Callable[[], bool] = lambda: True, timeout: float = 30
) -> None:
    """Wait until `url` answers (a server starting on 127.0.0.1); RuntimeError if it stops
    (`alive` turns false) or takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


@contextlib.contextmanager
def local_server(command: list[str], ready_url: str, what: str) -> Iterator[None]:
    """Run `command` (a server on 127.0.0.1) until `ready_url` answers; stop it whatever happens."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(ready_url, what, lambda: process.poll() is None)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint and stops it whatever happens."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with local_server(command, f"{endpoint}/moto-api/", "moto server"):
        yield endpoint


def _aws(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=os.environ.get("AWS_DEFAULT_REGION", REGION))


def _pascal(value: Any) -> Any:
    """Engine (camelCase) property names to the AWS API's PascalCase, deeply."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def _action(action: dict[str, Any]) -> dict[str, Any]:
    """A Pulumi listener default action as the ELBv2 API takes it."""
    if action["type"] == "forward":
        forward = action["forward"]
        return {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": g["arn"], "Weight": int(g["weight"])}
                    for g in forward["targetGroups"]
                ],
                "TargetGroupStickinessConfig": {"Enabled": bool(forward["stickiness"]["enabled"])},
            },
        }
    redirect = action["redirect"]
    return {
        "Type": "redirect",
        "RedirectConfig": {
            "Protocol": redirect["protocol"],
            "Port": redirect["port"],
            "StatusCode": redirect["statusCode"],
        },
    }


class AwsMocks(ProgramMocks):
    """Mocks that create the traffic resources at the AWS endpoint in the environment."""

    def computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        create = {
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:lb/loadBalancer:LoadBalancer": self._load_balancer,
            "aws:lb/targetGroup:TargetGroup": self._target_group,
            "aws:lb/listener:Listener": self._listener,
            "aws:cloudwatch/metricAlarm:MetricAlarm": self._alarm,
            "aws:sns/topic:Topic": self._topic,
            "aws:dynamodb/table:Table": self._table,
            "aws:ecs/cluster:Cluster": self._cluster,
            "aws:ecs/taskDefinition:TaskDefinition": self._task_definition,
            "aws:ecs/service:Service": self._service,
            "aws:cloudwatch/dashboard:Dashboard": self._dashboard,
            "aws:cloudwatch/eventRule:EventRule": self._rule,
        }.get(typ)
        if create is None:
            return super().computed(typ, name, inputs)
        return create(name, inputs)

    def _security_group(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        group = _aws("ec2").create_security_group(
            GroupName=name, Description=inputs.get("description", name), VpcId=inputs["vpcId"]
        )
        return {"id": group["GroupId"], "name": name}

    def _load_balancer(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        lb = _aws("elbv2").create_load_balancer(
            Name=name[:32],
            Subnets=inputs["subnets"],
            SecurityGroups=inputs["securityGroups"],
            Type="application",
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        return {
            "arn": arn,
            "arnSuffix": arn.split(":loadbalancer/", 1)[1],
            "dnsName": lb["DNSName"],
            "name": lb["LoadBalancerName"],
        }

    def _target_group(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        health = inputs.get("healthCheck", {})
        tg = _aws("elbv2").create_target_group(
            Name=name[:32],
            Protocol="HTTP",
            Port=int(inputs["port"]),
            VpcId=inputs["vpcId"],
            TargetType="ip",
            HealthCheckPath=health.get("path", "/"),
        )["TargetGroups"][0]
        arn = tg["TargetGroupArn"]
        return {"arn": arn, "arnSuffix": arn.split(":", 5)[5], "name": tg["TargetGroupName"]}

    def _listener(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {
            "LoadBalancerArn": inputs["loadBalancerArn"],
            "Protocol": inputs["protocol"],
            "Port": int(inputs["port"]),
            "DefaultActions": [_action(a) for a in inputs["defaultActions"]],
        }
        if inputs.get("certificateArn"):
            args["Certificates"] = [{"CertificateArn": inputs["certificateArn"]}]
            args["SslPolicy"] = inputs.get("sslPolicy")
        listener = _aws("elbv2").create_listener(**args)["Listeners"][0]
        return {"arn": listener["ListenerArn"]}

    def _alarm(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        args = {
            "AlarmName": inputs["name"],
            "ComparisonOperator": inputs["comparisonOperator"],
            "EvaluationPeriods": int(inputs["evaluationPeriods"]),
            "Threshold": float(inputs["threshold"]),
            "AlarmActions": inputs.get("alarmActions", []),
            "OKActions": inputs.get("okActions", []),
            "TreatMissingData": inputs.get("treatMissingData", "missing"),
        }
        if inputs.get("metricQueries"):
            args["Metrics"] = [
                {k: v for k, v in _pascal(q).items() if k != "Metric"}
                | ({"MetricStat": _metric_stat(q["metric"])} if q.get("metric") else {})
                for q in inputs["metricQueries"]
            ]
        else:
            args.update(
                Namespace=inputs["namespace"],
                MetricName=inputs["metricName"],
                Period=int(inputs["period"]),
                Dimensions=[{"Name": k, "Value": v} for k, v in inputs["dimensions"].items()],
            )
            if inputs.get("extendedStatistic"):
                args["ExtendedStatistic"] = inputs["extendedStatistic"]
            else:
                args["Statistic"] = inputs["statistic"]
        _aws("cloudwatch").put_metric_alarm(**args)
        arn = _aws("cloudwatch").describe_alarms(AlarmNames=[inputs["name"]])["MetricAlarms"][0][
            "AlarmArn"
        ]
        return {"name": inputs["name"], "arn": arn}

    def _dashboard(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        _aws("cloudwatch").put_dashboard(
            DashboardName=inputs["dashboardName"], DashboardBody=inputs["dashboardBody"]
        )
        return {"dashboardName": inputs["dashboardName"]}

    def _rule(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        physical = inputs.get("name") or f"{name}-{os.getpid()}"
        arn = _aws("events").put_rule(
            Name=physical,
            ScheduleExpression=inputs["scheduleExpression"],
            State=inputs.get("state", "ENABLED"),
        )["RuleArn"]
        return {"name": physical, "arn": arn}

    def _topic(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        arn = _aws("sns").create_topic(Name=inputs["name"])["TopicArn"]
        return {"name": inputs["name"], "arn": arn}

    def _table(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        table_name = f"{name}-{os.getpid()}"
        table = _aws("dynamodb").create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": a["name"], "AttributeType": a["type"]}
                for a in inputs["attributes"]
            ],
        )["TableDescription"]
        return {"name": table_name, "arn": table["TableArn"]}

    def _cluster(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        cluster = _aws("ecs").create_cluster(clusterName=name)["cluster"]
        return {"name": cluster["clusterName"], "arn": cluster["clusterArn"]}

    def _task_definition(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        task = _aws("ecs").register_task_definition(
            family=inputs["family"],
            containerDefinitions=json.loads(inputs["containerDefinitions"]),
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu=inputs["cpu"],
            memory=inputs["memory"],
        )["taskDefinition"]
        return {"arn": task["taskDefinitionArn"], "revision": task["revision"]}

    def _service(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        service = _aws("ecs").create_service(
            cluster=inputs["cluster"],
            serviceName=inputs["name"],
            taskDefinition=inputs["taskDefinition"],
            desiredCount=int(inputs["desiredCount"]),
            launchType="FARGATE",
            loadBalancers=[
                {
                    "targetGroupArn": lb["targetGroupArn"],
                    "containerName": lb["containerName"],
                    "containerPort": int(lb["containerPort"]),
                }
                for lb in inputs["loadBalancers"]
            ],
        )["service"]
        return {
            "name": service["serviceName"],
            "arn": service["serviceArn"],
            "id": service["serviceArn"],
        }


def _metric_stat(metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": metric["namespace"],
            "MetricName": metric["metricName"],
            "Dimensions": [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()],
        },
        "Period": int(metric["period"]),
        "Stat": metric["stat"],
    }


def rehearsal_config(
    stack_file: Path, service_name: str | None, analysis_period: int | None
) -> dict[str, Any]:
    """The stack's config as the rehearsal runs it: a network and certificate that exist at
    the endpoint, no gate records (the rehearsal signs its own), and its analysis
    (rehearsal_analysis)."""
    config = stack_config(stack_file)
    ec2 = _aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("abcabc")
    ]
    certificate = _aws("acm").request_certificate(DomainName="checkout.example.com")[
        "CertificateArn"
    ]
    config["cutover:network"] = {
        "vpcId": vpc,
        "publicSubnetIds": subnets[:3],
        "privateSubnetIds": subnets[3:],
    }
    config["cutover:certificateArn"] = certificate
    config.pop("cutover:gateRecords", None)
    if service_name:
        config["cutover:service"] = {**config["cutover:service"], "name": service_name}
    config["cutover:analysis"] = rehearsal_analysis(
        config.get("cutover:analysis") or {}, analysis_period
    )
    if analysis_period is not None:  # its traffic publishes at high resolution (per second)
        config["cutover:metricsResolutionSeconds"] = 1
    return config


def start_fleets(outputs: dict[str, Any]) -> None:
    """Register each color's tasks in its target group, as ECS does when they pass health checks."""
    elbv2 = _aws("elbv2")
    for index, color in enumerate(("blue", "green")):
        count = int(outputs["services"][color]["desiredCount"])
        elbv2.register_targets(
            TargetGroupArn=outputs["targetGroupArns"][color],
            Targets=[{"Id": f"10.0.{3 + index}.{10 + i}", "Port": 8080} for i in range(count)],
        )


def rehearsal_analysis(analysis: dict[str, Any], period: int | None) -> dict[str, Any]:
    """The `cutover:analysis` of a rehearsal. Nothing writes an ALB's metrics here unless the
    rehearsal does (`--analysis-period`): then windows of `period` seconds (the rehearsal's
    traffic writes per second where an ALB publishes per minute), Average latency (moto
    computes no percentiles) and no verification bake. Otherwise the analysis is off."""
    if period is None:
        return {**analysis, "enabled": False, "verifyMinutes": 0}
    return {
        **analysis,
        "enabled": True,
        "periodSeconds": period,
        "latencyStatistic": "Average",
        "verifyMinutes": 0,
        "delaySeconds": 0,  # moto has a rehearsal's figures as soon as they are written
    }


def write_stack_file(path: Path, config: dict[str, Any], source: Path, period: int | None) -> None:
    """The config the rehearsal's stack runs, as its Pulumi.<stack>.yaml, saying first where
    it came from and what it changed."""
    import textwrap

    import yaml

    analysis = (
        f"{period}-second windows of per-second metrics (metricsResolutionSeconds 1), Average "
        "latency and no verification bake"
        if period is not None
        else "off (nothing publishes the ALB's metrics)"
    )
    said = (
        f"The rehearsal's stack, as `python -m rehearsal up` ran the program for it: "
        f"{source.name} with moto's network and certificate, no gate records (the rehearsal "
        f"signs its own), and the analysis on {analysis}. `cutover shift --stack-config` and "
        "`cutover rollback --stack-config` write the weights they leave back into it."
    )
    header = textwrap.fill(said, 96, initial_indent="# ", subsequent_indent="# ")
    path.write_text(header + "\n" + yaml.safe_dump({"config": config}, sort_keys=False))


def provision(
    project_dir: Path,
    stack: str,
    service_name: str | None = None,
    previous: dict[str, Any] | None = None,
    stack_file: Path | None = None,
    analysis_period: int | None = None,
    written_stack_file: Path | None = None,
) -> dict[str, Any]:
    """Create the stack in the endpoint from the program; returns its outputs (one run per
    process), and writes the config it ran into `written_stack_file`, where given.

    Only its AWS parts: a Kubernetes stack with alb routing gets its ALB, alarms and table here,
    and its Deployments stay declared only."""
    source = stack_file or project_dir / f"Pulumi.{stack}.yaml"
    config = rehearsal_config(source, service_name, analysis_period)
    run = run_program(project_dir, stack, config, AwsMocks(previous), preview=False)
    start_fleets(run.outputs)
    if written_stack_file is not None:
        write_stack_file(written_stack_file, config, source, analysis_period)
    return dict(run.outputs)


def main(argv: list[str] | None = None) -> int:
    """`python -m rehearsal.aws --stack prod --out outputs.json`: provision one stack."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rehearsal.aws")
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--service-name")
    parser.add_argument("--stack-file", type=Path, help="instead of Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--analysis-period", type=int, help="turn the analysis on with windows of N seconds"
    )
    args = parser.parse_args(argv)
    if "AWS_ENDPOINT_URL" not in os.environ:
        print(
            "error: AWS_ENDPOINT_URL is not set; a rehearsal only runs against a local endpoint",
            file=sys.stderr,
        )
        return 2
    outputs = provision(
        args.project_dir.resolve(),
        args.stack,
        args.service_name,
        stack_file=args.stack_file,
        analysis_period=args.analysis_period,
    )
    args.out.write_text(json.dumps(outputs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# Who signs each kind of gate record in a rehearsal.
SIGNERS = {"approval": "chairman", "security-signoff": "security", "rollback-drill": "deploy"}


@dataclasses.dataclass(frozen=True)
class Gates:
    config: Path  # the pack config trusting the rehearsal's keys
    records: Path  # approvals and sign-offs of each color's release
    keys: Path  # chairman.key, security.key, deploy.key (and .pub)


def sign_gates(
    folder: Path,
    cutover: Callable[..., object],
    colors: tuple[str, ...] = ("green", "blue"),
    stack_file: Path = ROOT / "Pulumi.prod.yaml",
) -> Gates:
    """Make the signers' keys, the pack config trusting them, and an approval and a security
    sign-off of each color's release, all through the `cutover` commands people run
    (`cutover(*args)` runs one: the demo shows them, the tests and benchmarks do not)."""
    from cutover.preflight import pack_config_trusting

    keys, records = folder / "keys", folder / "records"
    records.mkdir(parents=True, exist_ok=True)
    for signer in SIGNERS.values():
        cutover("keys", "new", "--name", signer, "--out", str(keys))
    trusted = {kind: (keys / f"{s}.pub").read_text().strip() for kind, s in SIGNERS.items()}
    config = folder / "gates.json"
    config.write_text(json.dumps(pack_config_trusting(trusted), indent=2))
    for color in colors:
        release = ["--stack", "prod", "--color", color, "--stack-file", str(stack_file),
                   "--gates-config", str(config)]  # fmt: skip
        cutover("approve", *release, "--key", str(keys / "chairman.key"),
                "--out", str(records / f"{color}-approval.json"))  # fmt: skip
        cutover("signoff", *release, "--key", str(keys / "security.key"), "--scanner", "trivy",
                "--findings", "critical=0,high=1",
                "--out", str(records / f"{color}-signoff.json"))  # fmt: skip
    return Gates(config, records, keys)
