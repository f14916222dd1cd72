"""cutover's Pulumi program: load the config, declare both colors behind weighted routing, export."""

from datetime import UTC, datetime
from pathlib import Path

import pulumi

from components.cluster import ServiceCluster, ServiceClusterArgs
from components.color_fleet import ColorFleet, ColorFleetArgs
from components.config import StackConfig, load_config
from components.gate_records import GateRecordFile, GateRecords, GateRecordsArgs, read_gate_records
from components.helper_role import HelperRole, HelperRoleArgs
from components.journal import DeploymentJournal, DeploymentJournalArgs
from components.load_balancer import WeightedLoadBalancer, WeightedLoadBalancerArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.tags import stack_tags
from components.traffic import TRAFFIC_OUTPUT, TrafficPlan, previous_traffic
from cutover.color import COLORS
from cutover.outputs import export_kubernetes_outputs, export_outputs


def releases(config: StackConfig) -> dict:
    return {
        c: {
            "version": config.color(c).release,
            "image": config.color(c).image,
            "digest": config.color(c).digest,
        }
        for c in COLORS
    }


def ecs(config: StackConfig, records: list[GateRecordFile], traffic: TrafficPlan) -> None:
    """Both colors on ECS Fargate behind one weighted ALB, with alarms, journal and helper role."""
    tags = stack_tags(config)
    name = config.service.name
    counts = traffic.desired_counts
    cluster = ServiceCluster(name, ServiceClusterArgs(service_name=name, tags=tags))
    lb = WeightedLoadBalancer(name, WeightedLoadBalancerArgs(config=config))
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
                desired_count=counts[color],
            ),
            pulumi.ResourceOptions(depends_on=[lb.listener, lb.test_listener]),
        )
        for color in COLORS
    }
    monitoring = Monitoring(
        name,
        MonitoringArgs(
            config=config,
            load_balancer_arn_suffix=lb.load_balancer.arn_suffix,
            target_group_arn_suffixes={c: lb.target_groups[c].arn_suffix for c in COLORS},
        ),
    )
    journal = DeploymentJournal(
        name, DeploymentJournalArgs(tags=tags, production=config.production)
    )
    helper = HelperRole(
        f"{name}-helper",
        HelperRoleArgs(
            tags=tags,
            listener_arn=lb.listener.arn,
            alarm_arns=[a.arn for c in COLORS for a in monitoring.alarms[c]],
            table_arn=journal.table.arn,
            service_arns=[fleets[c].service.id for c in COLORS],
            topic_arn=monitoring.topic.arn,
        ),
    )
    GateRecords(f"{name}-gates", GateRecordsArgs(stack=config.stack, records=records, tags=tags))
    export_outputs(
        stack=config.stack,
        listener_arn=lb.listener.arn,
        target_group_arns={c: lb.target_groups[c].arn for c in COLORS},
        alarm_names={c: [a.name for a in monitoring.alarms[c]] for c in COLORS},
        releases=releases(config),
        services={
            c: {
                "platform": "ecs",
                "cluster": cluster.cluster.name,
                "service": fleets[c].service.name,
                "capacity": config.color(c).capacity,
                "idleCapacity": config.color(c).idle_capacity,
                "desiredCount": counts[c],
            }
            for c in COLORS
        },
        journal_table=journal.table.name,
        topic_arn=monitoring.topic.arn,
        load_balancer_dns_name=lb.load_balancer.dns_name,
        test_url=lb.test_url,
        extra={
            "project": config.project,
            TRAFFIC_OUTPUT: traffic.state,
            "helperRoleArn": helper.role.arn,
        },
    )


def kubernetes(config: StackConfig, records: list[GateRecordFile], traffic: TrafficPlan) -> None:
    """Both colors as Deployments behind one weighted Gateway API HTTPRoute."""
    # Imported here: pulumi-kubernetes takes seconds to import, and ECS stacks never need it.
    from components.gate_records import KubernetesGateRecords, KubernetesGateRecordsArgs
    from components.gateway_route import WeightedRoute, WeightedRouteArgs
    from components.kubernetes_color import KubernetesColor, KubernetesColorArgs

    cluster = config.kubernetes
    assert cluster is not None
    name = config.service.name
    colors = {
        c: KubernetesColor(
            f"{name}-{c}",
            KubernetesColorArgs(
                config=config, color=config.color(c), replicas=traffic.desired_counts[c]
            ),
        )
        for c in COLORS
    }
    route = WeightedRoute(
        name,
        WeightedRouteArgs(config=config, services={c: colors[c].resource_name for c in COLORS}),
        pulumi.ResourceOptions(depends_on=[colors[c].service for c in COLORS]),
    )
    KubernetesGateRecords(
        f"{name}-gates",
        KubernetesGateRecordsArgs(
            namespace=cluster.namespace,
            records=records,
            labels={"app.kubernetes.io/name": name},
        ),
    )
    export_kubernetes_outputs(
        stack=config.stack,
        route={"namespace": cluster.namespace, "name": route.route_name},
        releases=releases(config),
        services={
            c: {
                "platform": "kubernetes",
                "namespace": cluster.namespace,
                "deployment": colors[c].resource_name,
                "service": colors[c].resource_name,
                "capacity": config.color(c).capacity,
                "idleCapacity": config.color(c).idle_capacity,
                "desiredCount": traffic.desired_counts[c],
            }
            for c in COLORS
        },
        extra={"project": config.project, TRAFFIC_OUTPUT: traffic.state},
    )


config = load_config()
records = read_gate_records(config.gate_records, Path(__file__).resolve().parent)
traffic = TrafficPlan(config, previous_traffic(), datetime.now(UTC))
if config.platform == "kubernetes":
    kubernetes(config, records, traffic)
else:
    ecs(config, records, traffic)
