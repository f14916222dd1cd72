"""The stack's config as the program declares from it: frozen shapes, validated by
cutover_components/config.py before any resource is declared."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from cutover_gates.analysis_config import Settings
from cutover_gates.config_keys import SettingError
from cutover_gates.contract import Color, digest_of, other_color

from cutover.errors import ConfigError
from cutover.weights import weights_for

NAMESPACE = "cutover"
Platform = Literal["ecs", "kubernetes"]
Routing = Literal["gateway", "alb"]  # Kubernetes: a Gateway API HTTPRoute, or the stack's ALB
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")


@dataclass(frozen=True)
class ColorConfig:
    """One color's release and fleet: what runs, how much of it, how it is checked."""

    color: Color
    release: str
    image: str
    capacity: int
    idle_capacity: int
    container_port: int
    health_check_path: str

    @property
    def digest(self) -> str:
        """The image digest (`sha256:...`), or "" when the image is not pinned."""
        return digest_of(self.image)


@dataclass(frozen=True)
class Network:
    vpc_id: str
    public_subnet_ids: tuple[str, ...]
    private_subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    container_name: str
    cpu: int
    memory: int
    # what the application does (the longest request it serves, how long it keeps an idle
    # connection), and how long a container has after SIGTERM before it is killed
    longest_request_seconds: int
    keep_alive_seconds: int
    stop_timeout_seconds: int


@dataclass(frozen=True)
class KubernetesConfig:
    """Where the colors run on Kubernetes and how traffic reaches them.

    `routing` is `gateway` (a weighted Gateway API HTTPRoute on the named Gateway) or `alb`
    (each color's Service bound to its ALB target group by a TargetGroupBinding of the AWS
    Load Balancer Controller, so the ALB's weights and CloudWatch guards apply as on ECS).
    """

    namespace: str
    routing: Routing
    gateway_name: str | None  # gateway routing only
    gateway_namespace: str | None
    hostnames: tuple[str, ...]
    service_port: int
    cpu: str
    memory: str
    # how long a stopping pod keeps serving (its preStop sleep) before it is sent SIGTERM
    pre_stop_seconds: int
    # gateway routing only: how long the Gateway sends to a removed endpoint, its idle timeout
    endpoint_removal_seconds: int | None
    gateway_idle_timeout_seconds: int | None


@dataclass(frozen=True)
class AlarmThresholds:
    error_rate_percent: float
    p99_latency_seconds: float
    unhealthy_hosts: int
    evaluation_periods: int
    period_seconds: int


@dataclass(frozen=True)
class WatchdogConfig:
    """The stack's own watchdog: gives traffic back when a shift's process dies."""

    enabled: bool
    schedule: str  # rate(N minutes) (EventBridge); a CronJob runs it as */N * * * *
    image: str | None  # Gateway stacks: the cutover image the CronJob runs, pinned by digest
    log_retention_days: int

    @property
    def every_minutes(self) -> int:
        number, unit = RATE.fullmatch(self.schedule).groups()  # type: ignore[union-attr]
        return int(number) * (60 if unit.startswith("hour") else 1)

    @property
    def cron(self) -> str:
        """The schedule as a Kubernetes CronJob's."""
        minutes = self.every_minutes
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"


@dataclass(frozen=True)
class StackConfig:
    """Everything the program declares, validated."""

    project: str
    stack: str
    production: bool
    platform: Platform
    active_color: Color
    traffic_percent: int
    service: ServiceConfig
    network: Network | None  # on an ALB: ECS, or Kubernetes with alb routing
    kubernetes: KubernetesConfig | None  # Kubernetes only
    blue: ColorConfig
    green: ColorConfig
    alarms: AlarmThresholds
    rollback_window_minutes: int
    certificate_arn: str | None  # on an ALB
    test_listener_port: int
    deregistration_delay_seconds: int
    slow_start_seconds: int
    idle_timeout_seconds: int  # the ALB's
    stickiness_seconds: int  # 0: off
    gate_records: tuple[str, ...]
    watchdog: WatchdogConfig
    analysis: Settings
    # how often each target group's metrics are published: an ALB's every minute; every second
    # where they are published at high resolution (the rehearsal's simulated traffic)
    metrics_resolution_seconds: int

    def color(self, color: Color) -> ColorConfig:
        return self.blue if color == "blue" else self.green

    @property
    def vpc(self) -> Network:
        """The ECS platform's network (parse_config requires it there)."""
        if self.network is None:
            raise fail("network", None, "an object: an ALB needs a VPC and subnets")
        return self.network

    @property
    def certificate(self) -> str:
        """The ECS platform's listener certificate (parse_config requires it there)."""
        if self.certificate_arn is None:
            raise fail("certificateArn", None, "an ACM certificate ARN for the ALB")
        return self.certificate_arn

    @property
    def inactive_color(self) -> Color:
        return other_color(self.active_color)

    @property
    def weights(self) -> dict[str, int]:
        """Listener weights per color, from `activeColor` and `trafficPercent`."""
        return weights_for(self.active_color, self.traffic_percent)


def fail(path: str, given: Any, expected: str) -> ConfigError:
    return ConfigError(f"{NAMESPACE}:{SettingError(path, given, expected)}")
