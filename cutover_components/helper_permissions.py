"""What the `cutover` helper may do, as documents: its IAM policy on an ALB stack, its RBAC
rules on a Kubernetes one. Pure: `cutover_components/helper_role.py` declares the role around them."""

from __future__ import annotations

from cutover_gates.contract import WATCHDOG_CRON_JOB

import cutover_components.iam as iam


def helper_policy(
    listener_arn: str,
    alarm_arns: list[str],
    table_arn: str,
    service_arns: list[str],
    topic_arn: str,
) -> dict:
    """The helper's policy document. Writes are scoped to resources; `*` appears only on
    describe calls that IAM cannot scope, and on PutMetricData, which is held to one
    namespace by condition."""
    return iam.document(
        [
            iam.move_traffic("MoveTraffic", listener_arn),
            iam.read_load_balancer("DescribeTargetGroups"),
            iam.allow("ReadAlarms", ["cloudwatch:DescribeAlarms"], alarm_arns),
            iam.journal(table_arn),
            iam.metrics(),
            iam.events(topic_arn),
            *iam.scale_colors(service_arns),
        ]
    )


def kubernetes_helper_rules(deployments: list[str], route: str | None) -> list[dict]:
    """What the helper may do in the release namespace: its objects by name and, with gateway
    routing (no DynamoDB table), its journal: ConfigMaps and Leases it creates (RBAC cannot
    scope create or list by name), and reading the watchdog's CronJob by name: the exit gates
    (said after every shift, and `cutover exit-gates`) check that it is not suspended."""
    rules: list[dict] = [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": deployments,
            "verbs": ["get"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "resourceNames": deployments,
            "verbs": ["get", "patch"],
        },
    ]
    if route is not None:
        rules += [
            {
                "apiGroups": ["gateway.networking.k8s.io"],
                "resources": ["httproutes"],
                "resourceNames": [route],
                "verbs": ["get", "patch"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "verbs": ["get", "list", "create", "update"],
            },
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "create", "update", "delete"],
            },
            {  # deployment events on the route (a Gateway stack has no SNS topic)
                "apiGroups": [""],
                "resources": ["events"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["batch"],
                "resources": ["cronjobs"],
                "resourceNames": [WATCHDOG_CRON_JOB],
                "verbs": ["get"],
            },
        ]
    return rules
