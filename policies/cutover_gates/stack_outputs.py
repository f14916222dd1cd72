"""The stack outputs: their names as `pulumi stack output --json` prints them and the shape
of them all, `StackOutputs` (the shape of each one with a structure of its own is in
`cutover_gates.output_shapes`).

The program exports them, the helper reads them (`cutover.outputs` is its one boundary) and
the pack reads a previous update's; like the contract beside it, this module lives inside the
pack. Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from cutover_gates.analysis_config import Settings, parse_analysis
from cutover_gates.config_keys import SettingError
from cutover_gates.contract import ALB_RESOLUTION_SECONDS, COLORS, Color
from cutover_gates.output_shapes import (
    AlbMetrics,
    ColorService,
    KubernetesService,
    Platform,
    Release,
    Route,
    color_service_from_json,
)

STACK = "stack"
PROJECT = "project"
PLATFORM = "platform"
LISTENER_ARN = "listenerArn"
TARGET_GROUP_ARNS = "targetGroupArns"
ALARM_NAMES = "alarmNames"
RELEASES = "releases"
SERVICES = "services"
JOURNAL_TABLE = "journalTable"
TOPIC_ARN = "topicArn"
LOAD_BALANCER_DNS_NAME = "loadBalancerDnsName"
TEST_URL = "testUrl"
TRAFFIC = "traffic"
# the `traffic` the update before left (what this update moves traffic from), or FIRST_UPDATE
PREVIOUS_TRAFFIC = "previousTraffic"
HELPER_ROLE_ARN = "helperRoleArn"
ROUTE = "route"
# the stack's `cutover:analysis` settings, and where an ALB stack's per-color metrics are:
# {"namespace": "AWS/ApplicationELB", "loadBalancer": <arn suffix>, "targetGroups": {color: ...}}
ANALYSIS = "analysis"
METRICS = "metrics"
DASHBOARD = "dashboard"
# {"function", "schedule"} on AWS, {"cronJob", "namespace"} on a Gateway stack
WATCHDOG = "watchdog"


# What an ALB stack exports (a Gateway stack: STACK, ROUTE, RELEASES and SERVICES).
REQUIRED = (
    STACK,
    LISTENER_ARN,
    TARGET_GROUP_ARNS,
    ALARM_NAMES,
    RELEASES,
    SERVICES,
    JOURNAL_TABLE,
    TOPIC_ARN,
    LOAD_BALANCER_DNS_NAME,
    TEST_URL,
)
T = TypeVar("T")


@dataclass(frozen=True)
class StackOutputs:
    """A stack's outputs as the helper and the pack read them, validated.

    `routing` is `alb` (a weighted listener: ECS, or Kubernetes bound to the ALB) or `gateway`
    (a Kubernetes HTTPRoute, `route`); `platform` says what runs each color. `exported_analysis`
    holds the stack's `cutover:analysis` settings, read where they are used (`settings`: a
    rollback never reads them); `source` says where the outputs were read from, for messages.
    """

    stack: str
    releases: dict[Color, Release]
    services: dict[Color, ColorService]
    platform: Platform = "ecs"
    project: str = "cutover"
    route: Route | None = None
    listener_arn: str = ""
    target_group_arns: dict[str, str] = field(default_factory=dict)
    alarm_names: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in COLORS})
    journal_table: str | None = None
    topic_arn: str | None = None
    load_balancer_dns_name: Any = None
    test_url: str | None = None
    metrics: AlbMetrics | None = None
    exported_analysis: Any = None  # output `analysis` as exported: read by `settings`
    dashboard: str | None = None
    watchdog: dict[str, Any] | None = None  # {function, schedule} on AWS, {cronJob, namespace}
    source: str = field(default="outputs", compare=False)

    @classmethod
    def from_json(cls, data: Any, source: str) -> StackOutputs:
        """`data` (the JSON of `pulumi stack output --json`) read from `source`; ValueError
        naming `source` and the first malformed output."""

        def fail(key: str, expected: str) -> ValueError:
            return ValueError(f"{source}: output {key!r} {expected}")

        def shape(key: str, parse: Callable[[Any], T], value: Any) -> T:
            """`value` parsed by its shape's from_json; one line naming the output otherwise."""
            try:
                return parse(value)
            except ValueError as e:
                raise fail(key, str(e)) from None

        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object of stack outputs")
        alb = not (ROUTE in data and LISTENER_ARN not in data)
        required = REQUIRED if alb else (STACK, ROUTE, RELEASES, SERVICES)
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(
                f"{source}: missing outputs {missing}; expected the JSON of `pulumi stack output --json` "
                "for a cutover stack"
            )
        for key in (RELEASES, SERVICES) + ((TARGET_GROUP_ARNS, ALARM_NAMES) if alb else ()):
            if not isinstance(data[key], dict) or set(data[key]) != set(COLORS):
                raise fail(key, "must map exactly blue and green")
        for key in (STACK,) + ((LISTENER_ARN, JOURNAL_TABLE, TOPIC_ARN) if alb else ()):
            if not isinstance(data[key], str) or not data[key]:
                raise fail(key, "must be a non-empty string")
        platform = data.get(PLATFORM, "ecs")
        if platform not in ("ecs", "kubernetes"):
            raise fail(PLATFORM, "must be ecs or kubernetes")
        route = None if alb else shape(ROUTE, Route.from_json, data[ROUTE])
        releases = {
            c: shape(f"{RELEASES}.{c}", Release.from_json, data[RELEASES][c]) for c in COLORS
        }
        services = {
            c: shape(f"{SERVICES}.{c}", color_service_from_json,
                     {"platform": platform, **found} if isinstance(found, dict) else found)
            for c, found in ((c, data[SERVICES][c]) for c in COLORS)
        }  # fmt: skip
        for c, service in services.items():
            if service.platform != platform:
                raise fail(f"{SERVICES}.{c}", f"platform must be the stack's ({platform})")
        metrics = data.get(METRICS)
        return cls(
            stack=data[STACK],
            releases=releases,
            services=services,
            platform=platform,
            project=str(data.get(PROJECT, "cutover")),
            route=route,
            listener_arn=str(data.get(LISTENER_ARN, "")),
            target_group_arns=dict(data.get(TARGET_GROUP_ARNS) or {}),
            alarm_names={c: list((data.get(ALARM_NAMES) or {}).get(c, [])) for c in COLORS},
            journal_table=data.get(JOURNAL_TABLE),
            topic_arn=data.get(TOPIC_ARN),
            load_balancer_dns_name=data.get(LOAD_BALANCER_DNS_NAME),
            test_url=data.get(TEST_URL),
            metrics=None if metrics is None else shape(METRICS, AlbMetrics.from_json, metrics),
            exported_analysis=data.get(ANALYSIS),
            dashboard=data.get(DASHBOARD),
            watchdog=data.get(WATCHDOG),
            source=source,
        )

    def to_json(self) -> dict[str, Any]:
        """The outputs as `pulumi stack output --json` prints them (what from_json reads
        back; outputs no reader needs, such as `traffic`, are not kept)."""
        found = {STACK: self.stack, PROJECT: self.project, PLATFORM: self.platform,
                 RELEASES: {c: r.to_json() for c, r in self.releases.items()},
                 SERVICES: {c: s.to_json() for c, s in self.services.items()}}  # fmt: skip
        given = {JOURNAL_TABLE: self.journal_table, TOPIC_ARN: self.topic_arn,
                 TEST_URL: self.test_url, METRICS: self.metrics.to_json() if self.metrics else None,
                 ANALYSIS: self.exported_analysis, DASHBOARD: self.dashboard, WATCHDOG: self.watchdog}  # fmt: skip
        kept = {
            k: v
            for k, v in given.items()
            if v is not None or (self.route is None and k in REQUIRED)
        }
        if self.route is not None:
            return found | {ROUTE: self.route.to_json()} | kept
        alb = {LISTENER_ARN: self.listener_arn, TARGET_GROUP_ARNS: self.target_group_arns,
               ALARM_NAMES: self.alarm_names, LOAD_BALANCER_DNS_NAME: self.load_balancer_dns_name}  # fmt: skip
        return found | alb | kept  # what an ALB stack always exports, given or not

    @cached_property
    def settings(self) -> Settings | None:
        """The stack's `cutover:analysis` settings (output `analysis`), read by the same
        declaration the program validates them with, where they are used; ValueError naming
        the output when malformed."""
        if self.exported_analysis is None:
            return None
        if not isinstance(self.exported_analysis, dict):
            raise ValueError(
                f"{self.source}: output {ANALYSIS!r} is {self.exported_analysis!r}; expected an "
                "object of cutover:analysis settings"
            )
        try:
            # an output naming an analysis without `enabled` has it on: never silently off
            found = {"enabled": True, **self.exported_analysis}
            resolution = self.metrics.resolution_seconds if self.metrics else ALB_RESOLUTION_SECONDS
            return parse_analysis(found, False, self.routing == "gateway", resolution)
        except SettingError as e:
            raise ValueError(f"{self.source}: output {ANALYSIS!r}: {e}") from None

    @property
    def routing(self) -> str:
        """`gateway` for a stack routed by its HTTPRoute, else `alb`."""
        return "gateway" if self.route is not None else "alb"

    @property
    def route_key(self) -> str:
        """What the journal and the lock know this service's routing by: the listener ARN, or
        `httproute/<namespace>/<name>`."""
        return self.route.key if self.route is not None else self.listener_arn

    @property
    def namespace(self) -> str | None:
        """A Kubernetes stack's release namespace (where its journal is kept); None on ECS."""
        blue = self.services["blue"]
        return blue.namespace if isinstance(blue, KubernetesService) else None

    @property
    def on_aws(self) -> bool:
        """True when the stack has AWS parts (ALB, alarms, topic): events and metrics go there."""
        return self.routing == "alb"

    @property
    def name(self) -> str:
        """A short name for messages: the stack and service."""
        return f"{self.stack}/{self.services['blue'].service.rsplit('-', 1)[0]}"
