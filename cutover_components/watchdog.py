"""The stack's watchdog on AWS: a scheduled Lambda function that gives traffic back when the
process driving a shift dies (cutover.engine.watchdog.handler), itself watched by an alarm.

The function's code is the `cutover` and `cutover_gates` packages as this program has them
installed (pure Python; the watchdog's path imports only boto3, which the Lambda Python runtime
ships): found where Python imports them from, so a program of a team's own packs the same
files from its virtualenv as this repository's program does from its checkout.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from cutover_gates.contract import WATCHDOG_ROLE

import cutover_components.iam as iam

# What the archive holds: the packages the handler imports, each as its own folder.
PACKAGES = ("cutover", "cutover_gates")
RUNTIME = "python3.12"
HANDLER = "cutover.engine.watchdog.handler"
TIMEOUT_SECONDS = 300


def package_folder(name: str) -> Path:
    """The folder package `name` is imported from (an installed copy, or a checkout's)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the watchdog's code needs the {name} package", name=name)
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def code_files() -> dict[str, Path]:
    """Every module of the two packages, by its path in the archive (no caches, no data)."""
    return {
        f"{name}/{path.relative_to(folder).as_posix()}": path
        for name in PACKAGES
        for folder in [package_folder(name)]
        for path in sorted(folder.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def code_archive() -> pulumi.AssetArchive:
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(p)) for name, p in code_files().items()})


def watchdog_policy(
    table_arn: str,
    listener_arn: str,
    service_arns: list[str],
    topic_arn: str,
    log_group_arn: str,
) -> dict[str, Any]:
    """Least privilege: this journal, this listener, these services, this topic, its own log.
    `*` only on the read-only describe calls IAM cannot scope, and on PutMetricData held to
    cutover's namespace by condition."""
    return iam.document(
        [
            iam.journal(table_arn),
            iam.move_traffic("GiveTrafficBack", listener_arn),
            iam.read_load_balancer(),
            iam.events(topic_arn),
            iam.metrics(),
            iam.allow(
                "Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]
            ),
            *iam.scale_colors(service_arns),
        ]
    )


@dataclass(frozen=True)
class WatchdogArgs:
    function_name: str
    schedule: str
    log_retention_days: int
    outputs: pulumi.Input[dict[str, Any]]  # the stack outputs the handler reads
    table_arn: pulumi.Input[str]
    listener_arn: pulumi.Input[str]
    service_arns: list[pulumi.Input[str]]
    topic_arn: pulumi.Input[str]
    tags: dict[str, str]


class Watchdog(pulumi.ComponentResource):
    """Function, schedule, permission, log group, role, and an alarm on the function's errors."""

    def __init__(
        self, name: str, args: WatchdogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:Watchdog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "cutover:role": WATCHDOG_ROLE}
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=iam.assumed_by("lambda.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        policy = pulumi.Output.all(
            args.table_arn,
            args.listener_arn,
            pulumi.Output.all(*args.service_arns),
            args.topic_arn,
            self.log_group.arn,
        ).apply(lambda a: json.dumps(watchdog_policy(a[0], a[1], list(a[2]), a[3], a[4])))
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, policy=policy, opts=child
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            runtime=RUNTIME,
            handler=HANDLER,
            role=self.role.arn,
            code=code_archive(),
            timeout=TIMEOUT_SECONDS,
            memory_size=256,
            reserved_concurrent_executions=1,  # one pass at a time (the lease would also tell)
            environment={
                "variables": {
                    "CUTOVER_OUTPUTS": pulumi.Output.from_input(args.outputs).apply(json.dumps)
                }
            },
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.policy]),
        )
        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            schedule_expression=args.schedule,
            state="ENABLED",
            description="cutover watchdog: give traffic back when a shift's process dies",
            tags=tags,
            opts=child,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-target", rule=self.schedule.name, arn=self.function.arn, opts=child
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=self.schedule.arn,
            opts=child,
        )
        self.alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            name=f"{args.function_name}-errors",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": self.function.name},
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            alarm_description="The cutover watchdog failed to give traffic back, or could not run.",
            tags=tags,
            opts=child,
        )
        self.register_outputs({"function": self.function.name, "schedule": self.schedule.name})
