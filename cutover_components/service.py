"""The components' public surface: one service's blue and green fleets behind weighted routing,
with the gate records the policy pack judges, the journal, the helper's role and the watchdog.

A Pulumi program (this repository's own `__main__.py`, or a team's) declares it in a few lines:

    config = load_config()
    records = read_gate_records(config.gate_records, Path(__file__).parent)
    BlueGreenService(config.service.name, BlueGreenServiceArgs(config, records))

Everything else a stack needs follows from the stack's validated `cutover:` config: ECS
Fargate or Kubernetes Deployments, an ALB listener or a Gateway API HTTPRoute, alarms or
Prometheus, a Lambda function or a CronJob for the watchdog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
from cutover_gates.contract import COLORS, Color
from cutover_gates.output_shapes import AlbMetrics, EcsService, KubernetesService, Release
from cutover_gates.stack_outputs import (
    ANALYSIS,
    DASHBOARD,
    HELPER_ROLE_ARN,
    METRICS,
    PLATFORM,
    PROJECT,
    TRAFFIC,
    WATCHDOG,
)

from cutover.outputs import export_kubernetes_outputs, export_outputs
from cutover_components.cluster import ServiceCluster, ServiceClusterArgs
from cutover_components.color_fleet import ColorFleet, ColorFleetArgs
from cutover_components.gate_records import (
    GateRecordFile,
    GateRecords,
    GateRecordsArgs,
    KubernetesGateRecords,
    KubernetesGateRecordsArgs,
    require_mutable_config_maps,
)
from cutover_components.helper_role import (
    HelperRole,
    HelperRoleArgs,
    KubernetesHelperRole,
    KubernetesHelperRoleArgs,
)
from cutover_components.journal import DeploymentJournal, DeploymentJournalArgs
from cutover_components.latest_deployments import latest_deployments
from cutover_components.load_balancer import WeightedLoadBalancer, WeightedLoadBalancerArgs
from cutover_components.monitoring import NAMESPACE as ALB_NAMESPACE
from cutover_components.monitoring import Monitoring, MonitoringArgs
from cutover_components.stack import StackConfig
from cutover_components.tags import stack_tags
from cutover_components.traffic import TrafficPlan, previous_traffic, previous_update
from cutover_components.watchdog import Watchdog, WatchdogArgs


@dataclass(frozen=True)
class BlueGreenServiceArgs:
    """What a blue-green service is declared from.

    `config` is the stack's `cutover:` config, validated (`load_config()`): the weights come
    from its `activeColor` and `trafficPercent` because that is where `cutover shift` writes a
    finished shift back, so the next `pulumi up` keeps it. `gate_records` are the record files
    its `gateRecords` names, read and shape-checked (`read_gate_records`), for the pack.
    """

    config: StackConfig
    gate_records: Sequence[GateRecordFile] = ()


def releases(config: StackConfig) -> dict[str, dict[str, Any]]:
    """Each color's release as output `releases` gives it."""
    return {
        c: Release(config.color(c).release, config.color(c).digest, config.color(c).image).to_json()
        for c in COLORS
    }


def color_service(
    config: StackConfig,
    traffic: TrafficPlan,
    color: Color,
    shape: type[EcsService] | type[KubernetesService],
    **names: pulumi.Input[str],
) -> pulumi.Output[dict[str, Any]]:
    """One color's entry of output `services`, exported through its platform's `shape`
    (`names`: what runs it, as its fields name them)."""
    return pulumi.Output.all(desired_count=traffic.desired_counts[color], **names).apply(
        lambda found: shape(
            capacity=config.color(color).capacity,
            idle_capacity=config.color(color).idle_capacity,
            **found,
        ).to_json()
    )


class BlueGreenService(pulumi.ComponentResource):
    """Both colors of one service, the weighted routing between them and what gates and guards a
    shift: alarms, the deployment journal, the gate records, the helper's role and the watchdog.

    It exports the stack outputs `cutover` reads (`pulumi stack output --json` is the
    helper's `--outputs`), so a stack holds one BlueGreenService. Children the caller may
    need are attributes: `load_balancer` (None behind a Gateway), `route` (None on an ALB),
    `fleets`, `journal`, `monitoring`, `gate_records`, `helper_role` (IAM) and `kubernetes_role`,
    `watchdog`, and `outputs` (what it exported).
    """

    def __init__(
        self, name: str, args: BlueGreenServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        config = self.config = args.config
        if config.kubernetes is not None:
            require_mutable_config_maps()  # before any resource: a refused update changes nothing
        super().__init__("cutover:index:BlueGreenService", name, None, opts)
        self.records = list(args.gate_records)
        self.tags = stack_tags(config)
        # Stacks declared before this component existed had its children at the stack's root:
        # the alias keeps their URNs (and their children's), so upgrading replaces nothing.
        self._child = pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]
        )
        # a read of the stack's own outputs: at the stack's root, where it always was (a read
        # carries no alias to keep its URN elsewhere)
        previous = previous_update()
        self.traffic = TrafficPlan(config, previous_traffic(previous), datetime.now(UTC))
        self._outcomes = latest_deployments(previous)
        self.load_balancer: WeightedLoadBalancer | None = None
        self.monitoring: Monitoring | None = None
        self.journal: DeploymentJournal | None = None
        self.helper_role: HelperRole | None = None  # the helper's IAM role, on an ALB
        self.kubernetes_role: Any = None  # its Role in the release namespace, on Kubernetes
        self.route: Any = None  # a WeightedRoute behind a Gateway
        self.watchdog: Any = None  # a Watchdog (Lambda) or a KubernetesWatchdog (CronJob)
        self.fleets: dict[Color, Any] = {}  # ColorFleet (ECS) or KubernetesColor
        self.gate_records: Any = None  # GateRecords (SSM) or KubernetesGateRecords (ConfigMap)
        self.outputs: dict[str, Any] = {}
        if config.platform == "kubernetes":
            self._kubernetes(name)
        else:
            self._ecs(name)
        self.register_outputs(self.outputs)

    def options(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        """A child's options: parented here, with its URN from before kept (and `depends_on`)."""
        if not depends_on:
            return self._child
        return pulumi.ResourceOptions.merge(
            self._child, pulumi.ResourceOptions(depends_on=list(depends_on))
        )

    def _ecs(self, name: str) -> None:
        """Both colors on ECS Fargate behind the weighted ALB."""
        config, traffic = self.config, self.traffic
        cluster = ServiceCluster(
            name,
            ServiceClusterArgs(service_name=config.service.name, tags=self.tags),
            self.options(),
        )
        lb = self.declare_alb(name)
        assert lb.service_security_group is not None  # declared on platform ecs
        self.fleets = {
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
                self.options([lb.listener, lb.test_listener]),
            )
            for color in COLORS
        }
        self.gate_records = GateRecords(
            f"{name}-gates",
            GateRecordsArgs(
                stack=config.stack, records=self.records, tags=self.tags, outcomes=self._outcomes
            ),
            self.options(),
        )
        services = {
            c: color_service(config, traffic, c, EcsService, cluster=cluster.cluster.name,
                             service=self.fleets[c].service.name)
            for c in COLORS
        }  # fmt: skip
        self.export_alb(name, services, [self.fleets[c].service.id for c in COLORS])

    def _kubernetes(self, name: str) -> None:
        """Both colors as Deployments, behind a weighted Gateway API HTTPRoute or the ALB."""
        import cutover_components.gateway_route as gateway_route  # pulumi-kubernetes is slow
        import cutover_components.kubernetes_color as kubernetes_color  # pulumi-kubernetes is slow

        config, traffic, cluster = self.config, self.traffic, self.config.kubernetes
        assert cluster is not None
        lb = self.declare_alb(name) if cluster.routing == "alb" else None
        labels = {"app.kubernetes.io/name": config.service.name}
        self.fleets = {
            c: kubernetes_color.KubernetesColor(
                f"{name}-{c}",
                kubernetes_color.KubernetesColorArgs(
                    service=config.service,
                    cluster=cluster,
                    color=config.color(c),
                    replicas=traffic.desired_counts[c],
                    target_group_arn=lb.target_groups[c].arn if lb else None,
                    load_balancer_security_group_id=lb.security_group.id if lb else None,
                ),
                self.options([lb.listener, lb.test_listener] if lb else []),
            )
            for c in COLORS
        }
        self.gate_records = KubernetesGateRecords(
            f"{name}-gates",
            KubernetesGateRecordsArgs(
                namespace=cluster.namespace,
                records=self.records,
                labels=labels,
                outcomes=self._outcomes,
            ),
            self.options(),
        )
        services = {
            c: color_service(
                config, traffic, c, KubernetesService, namespace=cluster.namespace,
                deployment=self.fleets[c].resource_name, service=self.fleets[c].resource_name,
            )
            for c in COLORS
        }  # fmt: skip
        self.kubernetes_role = KubernetesHelperRole(
            f"{name}-helper",
            KubernetesHelperRoleArgs(
                namespace=cluster.namespace,
                deployments=[self.fleets[c].resource_name for c in COLORS],
                route=config.service.name if lb is None else None,
                labels=labels,
            ),
            self.options(),
        )
        if lb is not None:
            self.export_alb(name, services, [])
            return
        self.route = gateway_route.WeightedRoute(
            name,
            gateway_route.WeightedRouteArgs(
                service_name=config.service.name,
                cluster=cluster,
                weights=config.weights,
                services={c: self.fleets[c].resource_name for c in COLORS},
                rollback_window_minutes=config.rollback_window_minutes,
                stickiness_seconds=config.stickiness_seconds,
            ),
            self.options([self.fleets[c].service for c in COLORS]),
        )
        self.outputs = export_kubernetes_outputs(
            stack=config.stack,
            route={"namespace": cluster.namespace, "name": self.route.route_name},
            releases=releases(config),
            services=services,
            extra={
                PROJECT: config.project,
                TRAFFIC: traffic.state,
                ANALYSIS: config.analysis.to_json(),
            },
        )
        if config.watchdog.enabled:
            self._kubernetes_watchdog(name)

    def _kubernetes_watchdog(self, name: str) -> None:
        """The CronJob that gives traffic back on a Gateway stack."""
        from cutover_components.kubernetes_watchdog import (  # pulumi-kubernetes is slow
            NAME,
            KubernetesWatchdog,
            KubernetesWatchdogArgs,
        )

        config, cluster = self.config, self.config.kubernetes
        assert cluster is not None
        assert config.watchdog.image is not None  # parse_config requires it on Gateway stacks
        self.watchdog = KubernetesWatchdog(
            f"{name}-watchdog",
            KubernetesWatchdogArgs(
                namespace=cluster.namespace,
                schedule=config.watchdog.cron,
                every_minutes=config.watchdog.every_minutes,
                image=config.watchdog.image,
                role=self.kubernetes_role.role_name,
                outputs=self.outputs,
                labels={"app.kubernetes.io/name": config.service.name},
            ),
            self.options(),
        )
        watchdog = {"cronJob": NAME, "namespace": cluster.namespace}
        pulumi.export(WATCHDOG, watchdog)
        self.outputs = {**self.outputs, WATCHDOG: watchdog}

    def declare_alb(self, name: str) -> WeightedLoadBalancer:
        """The AWS side of a stack on an ALB (ECS, or Kubernetes with alb routing): the weighted
        load balancer, its per-color alarms and the journal table."""
        config = self.config
        lb = self.load_balancer = WeightedLoadBalancer(
            name, WeightedLoadBalancerArgs(config=config), self.options()
        )
        self.monitoring = Monitoring(
            name,
            MonitoringArgs(
                config=config,
                load_balancer_arn_suffix=lb.load_balancer.arn_suffix,
                target_group_arn_suffixes={c: lb.target_groups[c].arn_suffix for c in COLORS},
            ),
            self.options(),
        )
        self.journal = DeploymentJournal(
            name,
            DeploymentJournalArgs(tags=self.tags, production=config.production),
            self.options(),
        )
        return lb

    def export_alb(
        self, name: str, services: dict[Color, pulumi.Output[Any]], service_arns: list[Any]
    ) -> None:
        """The helper's role, the outputs of a stack behind the ALB, and its Lambda watchdog."""
        config, lb = self.config, self.load_balancer
        monitoring, journal = self.monitoring, self.journal
        assert lb is not None and monitoring is not None and journal is not None
        helper_role = self.helper_role = HelperRole(
            f"{name}-helper",
            HelperRoleArgs(
                tags=self.tags,
                listener_arn=lb.listener.arn,
                alarm_arns=[a.arn for c in COLORS for a in monitoring.alarms[c]],
                table_arn=journal.table.arn,
                service_arns=service_arns,
                topic_arn=monitoring.topic.arn,
            ),
            self.options(),
        )
        metrics = pulumi.Output.all(
            lb.load_balancer.arn_suffix, *[lb.target_groups[c].arn_suffix for c in COLORS]
        ).apply(
            lambda found: AlbMetrics(
                ALB_NAMESPACE, found[0], dict(zip(COLORS, found[1:], strict=True)),
                config.metrics_resolution_seconds,
            ).to_json()
        )  # fmt: skip
        self.outputs = export_outputs(
            stack=config.stack,
            listener_arn=lb.listener.arn,
            target_group_arns={c: lb.target_groups[c].arn for c in COLORS},
            alarm_names={c: [a.name for a in monitoring.alarms[c]] for c in COLORS},
            releases=releases(config),
            services=services,
            journal_table=journal.table.name,
            topic_arn=monitoring.topic.arn,
            load_balancer_dns_name=lb.load_balancer.dns_name,
            test_url=lb.test_url,
            extra={
                PROJECT: config.project,
                PLATFORM: config.platform,
                TRAFFIC: self.traffic.state,
                HELPER_ROLE_ARN: helper_role.role.arn,
                ANALYSIS: config.analysis.to_json(),
                METRICS: metrics,
                DASHBOARD: monitoring.dashboard.dashboard_name,
            },
        )
        if not config.watchdog.enabled:
            return
        self.watchdog = Watchdog(
            f"{name}-watchdog",
            WatchdogArgs(
                function_name=f"{config.service.name}-{config.stack}-cutover-watchdog"[:64],
                schedule=config.watchdog.schedule,
                log_retention_days=config.watchdog.log_retention_days,
                outputs=self.outputs,
                table_arn=journal.table.arn,
                listener_arn=lb.listener.arn,
                service_arns=service_arns,
                topic_arn=monitoring.topic.arn,
                tags=self.tags,
            ),
            self.options(),
        )
        watchdog = {
            "function": self.watchdog.function.name,
            "schedule": self.watchdog.schedule.name,
        }
        pulumi.export(WATCHDOG, watchdog)
        self.outputs = {**self.outputs, WATCHDOG: watchdog}
