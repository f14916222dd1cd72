"""cutover's Pulumi program: load the config, declare both colors behind weighted routing, export."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi
from cutover_gates.contract import (
    ALB_RESOLUTION_SECONDS,
    ANALYSIS,
    COLORS,
    DASHBOARD,
    HELPER_ROLE_ARN,
    METRICS,
    PLATFORM,
    PROJECT,
    TRAFFIC,
    WATCHDOG,
    AlbMetrics,
    Color,
    ColorService,
    Release,
)

from cutover.outputs import export_kubernetes_outputs, export_outputs
from cutover_components.cluster import ServiceCluster, ServiceClusterArgs
from cutover_components.color_fleet import ColorFleet, ColorFleetArgs
from cutover_components.config import load_config
from cutover_components.gate_records import (
    GateRecordFile,
    GateRecords,
    GateRecordsArgs,
    read_gate_records,
)
from cutover_components.helper_role import HelperRole, HelperRoleArgs
from cutover_components.journal import DeploymentJournal, DeploymentJournalArgs
from cutover_components.latest_deployments import latest_deployments
from cutover_components.load_balancer import WeightedLoadBalancer, WeightedLoadBalancerArgs
from cutover_components.monitoring import NAMESPACE as ALB_NAMESPACE
from cutover_components.monitoring import Monitoring, MonitoringArgs
from cutover_components.stack import StackConfig
from cutover_components.tags import stack_tags
from cutover_components.traffic import TrafficPlan, previous_traffic, previous_update
from cutover_components.watchdog import Watchdog, WatchdogArgs


def releases(config: StackConfig) -> dict[str, dict[str, Any]]:
    return {
        c: Release(config.color(c).release, config.color(c).digest, config.color(c).image).to_json()
        for c in COLORS
    }


class AlbSide:
    """The AWS side shared by ECS and Kubernetes-with-alb: the weighted ALB, alarms, journal."""

    def __init__(self, config: StackConfig) -> None:
        name = config.service.name
        self.tags = stack_tags(config)
        self.lb = WeightedLoadBalancer(name, WeightedLoadBalancerArgs(config=config))
        self.monitoring = Monitoring(
            name,
            MonitoringArgs(
                config=config,
                load_balancer_arn_suffix=self.lb.load_balancer.arn_suffix,
                target_group_arn_suffixes={c: self.lb.target_groups[c].arn_suffix for c in COLORS},
            ),
        )
        self.journal = DeploymentJournal(
            name, DeploymentJournalArgs(tags=self.tags, production=config.production)
        )

    def export(
        self, config: StackConfig, traffic: TrafficPlan, services: dict, service_arns: list
    ) -> None:
        """The helper's role, then the outputs contract for a stack behind the ALB."""
        helper = HelperRole(
            f"{config.service.name}-helper",
            HelperRoleArgs(
                tags=self.tags,
                listener_arn=self.lb.listener.arn,
                alarm_arns=[a.arn for c in COLORS for a in self.monitoring.alarms[c]],
                table_arn=self.journal.table.arn,
                service_arns=service_arns,
                topic_arn=self.monitoring.topic.arn,
            ),
        )
        values = export_outputs(
            stack=config.stack,
            listener_arn=self.lb.listener.arn,
            target_group_arns={c: self.lb.target_groups[c].arn for c in COLORS},
            alarm_names={c: [a.name for a in self.monitoring.alarms[c]] for c in COLORS},
            releases=releases(config),
            services=services,
            journal_table=self.journal.table.name,
            topic_arn=self.monitoring.topic.arn,
            load_balancer_dns_name=self.lb.load_balancer.dns_name,
            test_url=self.lb.test_url,
            extra={
                PROJECT: config.project,
                PLATFORM: config.platform,
                TRAFFIC: traffic.state,
                HELPER_ROLE_ARN: helper.role.arn,
                ANALYSIS: config.analysis.to_json(),
                METRICS: pulumi.Output.all(
                    self.lb.load_balancer.arn_suffix,
                    *[self.lb.target_groups[c].arn_suffix for c in COLORS],
                ).apply(
                    lambda found: AlbMetrics(
                        ALB_NAMESPACE,
                        found[0],
                        dict(zip(COLORS, found[1:], strict=True)),
                        ALB_RESOLUTION_SECONDS,
                    ).to_json()
                ),  # fmt: skip
                DASHBOARD: self.monitoring.dashboard.dashboard_name,
            },
        )
        if config.watchdog.enabled:
            watchdog = Watchdog(
                f"{config.service.name}-watchdog",
                WatchdogArgs(
                    function_name=f"{config.service.name}-{config.stack}-cutover-watchdog"[:64],
                    schedule=config.watchdog.schedule,
                    log_retention_days=config.watchdog.log_retention_days,
                    outputs=values,
                    table_arn=self.journal.table.arn,
                    listener_arn=self.lb.listener.arn,
                    service_arns=service_arns,
                    topic_arn=self.monitoring.topic.arn,
                    tags=self.tags,
                ),
            )
            pulumi.export(
                WATCHDOG,
                {"function": watchdog.function.name, "schedule": watchdog.schedule.name},
            )


def color_service(
    config: StackConfig,
    traffic: TrafficPlan,
    color: Color,
    platform: str,
    **names: pulumi.Input[str],
) -> pulumi.Output[dict[str, Any]]:
    """One color's entry of output `services`, exported through the contract's ColorService
    (`names`: what runs it, as its fields name them)."""
    return pulumi.Output.all(desired_count=traffic.desired_counts[color], **names).apply(
        lambda found: ColorService(
            platform=platform,
            capacity=config.color(color).capacity,
            idle_capacity=config.color(color).idle_capacity,
            **found,
        ).to_json()
    )


def ecs(
    config: StackConfig,
    records: list[GateRecordFile],
    traffic: TrafficPlan,
    outcomes: pulumi.Output[dict[str, str]],
) -> None:
    """Both colors on ECS Fargate behind one weighted ALB, with alarms, journal and helper role."""
    name = config.service.name
    cluster = ServiceCluster(name, ServiceClusterArgs(service_name=name, tags=stack_tags(config)))
    side = AlbSide(config)
    lb = side.lb
    assert lb.service_security_group is not None  # declared on platform ecs
    fleets = {
        color: ColorFleet(
            f"{name}-{color}",
            ColorFleetArgs(
                config=config,
                color=config.color(color),
                cluster_arn=cluster.cluster.arn,
                execution_role_arn=cluster.execution_role.arn,
                log_group_name=cluster.log_group.name,
                security_group_id=lb.service_security_group.id,
                target_group_arn=lb.target_groups[color].arn,
                desired_count=traffic.desired_counts[color],
            ),
            pulumi.ResourceOptions(depends_on=[lb.listener, lb.test_listener]),
        )
        for color in COLORS
    }
    GateRecords(
        f"{name}-gates",
        GateRecordsArgs(stack=config.stack, records=records, tags=side.tags, outcomes=outcomes),
    )
    services = {
        c: color_service(
            config, traffic, c, "ecs", cluster=cluster.cluster.name, service=fleets[c].service.name
        )
        for c in COLORS
    }
    side.export(config, traffic, services, [fleets[c].service.id for c in COLORS])


def kubernetes(
    config: StackConfig,
    records: list[GateRecordFile],
    traffic: TrafficPlan,
    outcomes: pulumi.Output[dict[str, str]],
) -> None:
    """Both colors as Deployments, behind a weighted Gateway API HTTPRoute or the weighted ALB."""
    # Imported here: pulumi-kubernetes takes seconds to import, and ECS stacks never need it.
    from cutover_components.gate_records import KubernetesGateRecords, KubernetesGateRecordsArgs
    from cutover_components.gateway_route import WeightedRoute, WeightedRouteArgs
    from cutover_components.helper_role import KubernetesHelperRole, KubernetesHelperRoleArgs
    from cutover_components.kubernetes_color import KubernetesColor, KubernetesColorArgs

    cluster = config.kubernetes
    assert cluster is not None
    name = config.service.name
    side = AlbSide(config) if cluster.routing == "alb" else None
    colors = {
        c: KubernetesColor(
            f"{name}-{c}",
            KubernetesColorArgs(
                service=config.service,
                cluster=cluster,
                color=config.color(c),
                replicas=traffic.desired_counts[c],
                target_group_arn=side.lb.target_groups[c].arn if side else None,
                load_balancer_security_group_id=side.lb.security_group.id if side else None,
            ),
            pulumi.ResourceOptions(depends_on=[side.lb.listener, side.lb.test_listener])
            if side
            else None,
        )
        for c in COLORS
    }
    KubernetesGateRecords(
        f"{name}-gates",
        KubernetesGateRecordsArgs(
            namespace=cluster.namespace,
            records=records,
            labels={"app.kubernetes.io/name": name},
            outcomes=outcomes,
        ),
    )
    services = {
        c: color_service(
            config, traffic, c, "kubernetes", namespace=cluster.namespace,
            deployment=colors[c].resource_name, service=colors[c].resource_name,
        )
        for c in COLORS
    }  # fmt: skip
    helper = KubernetesHelperRole(
        f"{name}-helper",
        KubernetesHelperRoleArgs(
            namespace=cluster.namespace,
            deployments=[colors[c].resource_name for c in COLORS],
            route=name if side is None else None,
            labels={"app.kubernetes.io/name": name},
        ),
    )
    if side is not None:
        side.export(config, traffic, services, [])
        return
    route = WeightedRoute(
        name,
        WeightedRouteArgs(
            service_name=name,
            cluster=cluster,
            weights=config.weights,
            services={c: colors[c].resource_name for c in COLORS},
        ),
        pulumi.ResourceOptions(depends_on=[colors[c].service for c in COLORS]),
    )
    values = export_kubernetes_outputs(
        stack=config.stack,
        route={"namespace": cluster.namespace, "name": route.route_name},
        releases=releases(config),
        services=services,
        extra={
            PROJECT: config.project,
            TRAFFIC: traffic.state,
            ANALYSIS: config.analysis.to_json(),
        },
    )
    if config.watchdog.enabled:
        from cutover_components.kubernetes_watchdog import (
            NAME,
            KubernetesWatchdog,
            KubernetesWatchdogArgs,
        )

        assert config.watchdog.image is not None  # parse_config requires it on Gateway stacks
        KubernetesWatchdog(
            f"{name}-watchdog",
            KubernetesWatchdogArgs(
                namespace=cluster.namespace,
                schedule=config.watchdog.cron,
                every_minutes=config.watchdog.every_minutes,
                image=config.watchdog.image,
                role=helper.role_name,
                outputs=values,
                labels={"app.kubernetes.io/name": name},
            ),
        )
        pulumi.export(WATCHDOG, {"cronJob": NAME, "namespace": cluster.namespace})


config = load_config()
records = read_gate_records(config.gate_records, Path(__file__).resolve().parent)
previous = previous_update()
traffic = TrafficPlan(config, previous_traffic(previous), datetime.now(UTC))
outcomes = latest_deployments(previous)
if config.platform == "kubernetes":
    kubernetes(config, records, traffic, outcomes)
else:
    ecs(config, records, traffic, outcomes)
