"""IAM statements the helper's and the watchdog's roles share: one definition of each grant."""

from __future__ import annotations

import json
from typing import Any

from cutover_gates.contract import METRICS_NAMESPACE

Statement = dict[str, Any]


def allow(sid: str, actions: list[str], resources: list[str]) -> Statement:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def journal(table_arn: str) -> Statement:
    """The deployment journal and its leases: items of this table only."""
    actions = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"]
    return allow("Journal", [f"dynamodb:{a}" for a in actions], [table_arn])


def move_traffic(sid: str, listener_arn: str) -> Statement:
    return allow(sid, ["elasticloadbalancing:ModifyListener"], [listener_arn])


def read_load_balancer(*extra: str) -> Statement:
    """Describe calls IAM cannot scope to a resource."""
    actions = ["DescribeListeners", "DescribeTargetHealth", *extra]
    return allow("ReadLoadBalancer", [f"elasticloadbalancing:{a}" for a in actions], ["*"])


def events(topic_arn: str) -> Statement:
    return allow("Events", ["sns:Publish"], [topic_arn])


def metrics() -> Statement:
    """PutMetricData cannot be scoped by resource: held to cutover's namespace by condition."""
    return {
        **allow("Metrics", ["cloudwatch:PutMetricData"], ["*"]),
        "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
    }


def scale_colors(service_arns: list[str]) -> list[Statement]:
    """ECS services to scale back up (none on Kubernetes: Deployments are scaled through the
    cluster's own API)."""
    if not service_arns:
        return []
    return [allow("ScaleColors", ["ecs:UpdateService", "ecs:DescribeServices"], service_arns)]


def document(statements: list[Statement]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def assumed_by(service: str) -> str:
    """A role trust policy for one AWS service principal (`lambda.amazonaws.com`, ...)."""
    return json.dumps(
        document(
            [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
        )
    )
