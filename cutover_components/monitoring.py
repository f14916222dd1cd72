"""Per-color alarms on each color's own target group, the event topic and a side-by-side dashboard."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from cutover_gates.contract import COLORS, Color

from cutover_components.stack import StackConfig
from cutover_components.tags import color_tags, stack_tags

NAMESPACE = "AWS/ApplicationELB"


@dataclass(frozen=True)
class MonitoringArgs:
    config: StackConfig
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: dict[Color, pulumi.Input[str]]


class Monitoring(pulumi.ComponentResource):
    """Alarms per color (5xx rate, p99 latency, unhealthy hosts) that notify one SNS topic.

    The helper's guards read these alarms by name (stack output `alarmNames`); the topic
    also carries the helper's deployment events.
    """

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:Monitoring", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        thresholds = config.alarms
        self.topic = aws.sns.Topic(
            f"{name}-events",
            name=f"{config.service.name}-{config.stack}-cutover-events",
            tags=stack_tags(config),
            opts=child,
        )
        actions = [self.topic.arn]
        self.alarms: dict[Color, list[aws.cloudwatch.MetricAlarm]] = {}
        for color in COLORS:
            tags = color_tags(config, config.color(color))
            dimensions = {
                "LoadBalancer": args.load_balancer_arn_suffix,
                "TargetGroup": args.target_group_arn_suffixes[color],
            }
            prefix = f"{config.service.name}-{config.stack}-{color}"
            common: dict[str, Any] = {
                "evaluation_periods": thresholds.evaluation_periods,
                "datapoints_to_alarm": thresholds.evaluation_periods,
                "alarm_actions": actions,
                "ok_actions": actions,
                "tags": tags,
                "opts": child,
            }

            def metric(metric_name: str, stat: str, dims: dict = dimensions) -> dict[str, Any]:
                return {
                    "namespace": NAMESPACE,
                    "metric_name": metric_name,
                    "period": thresholds.period_seconds,
                    "stat": stat,
                    "dimensions": dims,
                }

            error_rate = aws.cloudwatch.MetricAlarm(
                f"{name}-{color}-5xx-rate",
                name=f"{prefix}-5xx-rate",
                alarm_description=f"{color}: target 5xx responses above "
                f"{thresholds.error_rate_percent}% of requests",
                comparison_operator="GreaterThanThreshold",
                threshold=thresholds.error_rate_percent,
                treat_missing_data="notBreaching",
                metric_queries=[
                    {  # type: ignore[list-item]
                        "id": "errors",
                        "metric": metric("HTTPCode_Target_5XX_Count", "Sum"),
                        "return_data": False,
                    },
                    {  # type: ignore[list-item]
                        "id": "requests",
                        "metric": metric("RequestCount", "Sum"),
                        "return_data": False,
                    },
                    {
                        "id": "rate",
                        "expression": "IF(requests > 0, 100 * errors / requests, 0)",
                        "label": "5xx rate (%)",
                        "return_data": True,
                    },
                ],
                **common,
            )
            latency = aws.cloudwatch.MetricAlarm(
                f"{name}-{color}-p99-latency",
                name=f"{prefix}-p99-latency",
                alarm_description=f"{color}: p99 target response time above "
                f"{thresholds.p99_latency_seconds}s",
                comparison_operator="GreaterThanThreshold",
                threshold=thresholds.p99_latency_seconds,
                namespace=NAMESPACE,
                metric_name="TargetResponseTime",
                extended_statistic="p99",
                period=thresholds.period_seconds,
                dimensions=dimensions,
                treat_missing_data="notBreaching",
                **common,
            )
            unhealthy = aws.cloudwatch.MetricAlarm(
                f"{name}-{color}-unhealthy-hosts",
                name=f"{prefix}-unhealthy-hosts",
                alarm_description=f"{color}: {thresholds.unhealthy_hosts} or more unhealthy targets",
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=thresholds.unhealthy_hosts,
                namespace=NAMESPACE,
                metric_name="UnHealthyHostCount",
                statistic="Maximum",
                period=thresholds.period_seconds,
                dimensions=dimensions,
                treat_missing_data="breaching",
                **common,
            )
            self.alarms[color] = [error_rate, latency, unhealthy]

        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{config.service.name}-{config.stack}-cutover",
            dashboard_body=pulumi.Output.all(
                args.load_balancer_arn_suffix,
                *(args.target_group_arn_suffixes[c] for c in COLORS),
                aws.get_region_output().region,
            ).apply(lambda v: dashboard_body(v[0], dict(zip(COLORS, v[1:3], strict=True)), v[3])),
            opts=child,
        )
        self.register_outputs({"topicArn": self.topic.arn})


def dashboard_body(lb_suffix: str, tg_suffixes: dict[Color, str], region: str) -> str:
    """Four graphs (requests, 5xx, p99 latency, healthy hosts), each with blue and green side by side."""
    graphs = [
        ("Requests", "RequestCount", "Sum"),
        ("Target 5xx", "HTTPCode_Target_5XX_Count", "Sum"),
        ("p99 latency (s)", "TargetResponseTime", "p99"),
        ("Healthy hosts", "HealthyHostCount", "Minimum"),
    ]
    widgets = []
    for i, (title, metric_name, stat) in enumerate(graphs):
        widgets.append(
            {
                "type": "metric",
                "x": (i % 2) * 12,
                "y": (i // 2) * 6,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "stat": stat,
                    "period": 60,
                    "metrics": [
                        [
                            NAMESPACE,
                            metric_name,
                            "LoadBalancer",
                            lb_suffix,
                            "TargetGroup",
                            tg_suffixes[c],
                            {"label": c, "color": "#1f77b4" if c == "blue" else "#2ca02c"},
                        ]
                        for c in COLORS
                    ],
                },
            }
        )
    return json.dumps({"widgets": widgets})
