"""The stack's `cutover:` config, read once and validated before any resource is declared.

`parse_config` is pure (raw strings in, frozen dataclasses out) so every rule is testable
without Pulumi; `load_config` is the one place that reads Pulumi's config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cutover_gates.analysis_config import SettingError, Settings, parse_analysis
from cutover_gates.contract import COLORS, Color, digest_of, other_color
from cutover_gates.record import PINNED_IMAGE

from cutover.errors import ConfigError
from cutover.weights import weights_for

NAMESPACE = "cutover"

_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_CERT = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi)?$")

KNOWN_KEYS = frozenset(
    {
        "activeColor",
        "trafficPercent",
        "production",
        "platform",
        "service",
        "network",
        "colors",
        "alarms",
        "rollbackWindowMinutes",
        "certificateArn",
        "testListenerPort",
        "deregistrationDelaySeconds",
        "slowStartSeconds",
        "gateRecords",
        "kubernetes",
        "watchdog",
        "analysis",
    }
)
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")


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


@dataclass(frozen=True)
class KubernetesConfig:
    """Where the colors run on Kubernetes and how traffic reaches them.

    `routing` is `gateway` (a weighted Gateway API HTTPRoute on the named Gateway) or `alb`
    (each color's Service bound to its ALB target group by a TargetGroupBinding of the AWS
    Load Balancer Controller, so the ALB's weights and CloudWatch guards apply as on ECS).
    """

    namespace: str
    routing: str
    gateway_name: str | None  # gateway routing only
    gateway_namespace: str | None
    hostnames: tuple[str, ...]
    service_port: int
    cpu: str
    memory: str


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
        number, unit = _RATE.fullmatch(self.schedule).groups()  # type: ignore[union-attr]
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
    platform: str
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
    gate_records: tuple[str, ...]
    watchdog: WatchdogConfig
    analysis: Settings

    def color(self, color: Color) -> ColorConfig:
        return self.blue if color == "blue" else self.green

    @property
    def vpc(self) -> Network:
        """The ECS platform's network (parse_config requires it there)."""
        if self.network is None:
            raise _fail("network", None, "an object: an ALB needs a VPC and subnets")
        return self.network

    @property
    def certificate(self) -> str:
        """The ECS platform's listener certificate (parse_config requires it there)."""
        if self.certificate_arn is None:
            raise _fail("certificateArn", None, "an ACM certificate ARN for the ALB")
        return self.certificate_arn

    @property
    def inactive_color(self) -> Color:
        return other_color(self.active_color)

    @property
    def weights(self) -> dict[str, int]:
        """Listener weights per color, from `activeColor` and `trafficPercent`."""
        return weights_for(self.active_color, self.traffic_percent)


def _key(path: str) -> str:
    return f"{NAMESPACE}:{path}"


def _fail(path: str, given: Any, expected: str) -> ConfigError:
    return ConfigError(f"{_key(path)}: got {given!r}; expected {expected}")


def _object(raw: Mapping[str, str], key: str, required: bool = True) -> dict[str, Any]:
    text = raw.get(key)
    if text is None:
        if required:
            raise _fail(key, None, "an object (set it in Pulumi.<stack>.yaml)")
        return {}
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as e:
        raise _fail(key, text, f"a JSON object ({e.msg})") from None
    if not isinstance(value, dict):
        raise _fail(key, value, "an object")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(path, value, f"a whole number from {low} to {high}")
    return value


def _number(value: Any, path: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(path, value, f"a number from {low} to {high}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise _fail(path, value, f"a number from {low} to {high}")
    return number


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(path, value, "true or false")


def _text(value: Any, path: str, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(path, value, expected)
    return value


def _ids(value: Any, path: str, pattern: re.Pattern[str], expected: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise _fail(path, value, f"a list of at least two {expected} (one per availability zone)")
    ids = tuple(_text(v, f"{path}[{i}]", pattern, expected) for i, v in enumerate(value))
    if len(set(ids)) != len(ids):
        raise _fail(path, value, f"distinct {expected}")
    return ids


def _unknown(obj: Mapping[str, Any], path: str, known: set[str]) -> None:
    extra = sorted(set(obj) - known)
    if extra:
        raise _fail(f"{path}.{extra[0]}", obj[extra[0]], f"one of the known keys {sorted(known)}")


def _color(name: Color, obj: Any, production: bool) -> ColorConfig:
    path = f"colors.{name}"
    if not isinstance(obj, dict):
        raise _fail(path, obj, "an object with release, image, capacity")
    _unknown(
        obj,
        path,
        {"release", "image", "capacity", "idleCapacity", "containerPort", "healthCheckPath"},
    )
    release = _text(obj.get("release"), f"{path}.release", _VERSION, "a version like 1.42.0")
    image = obj.get("image")
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise _fail(f"{path}.image", image, "a container image reference")
    if production and not PINNED_IMAGE.fullmatch(image):
        raise _fail(
            f"{path}.image",
            image,
            "an image pinned by digest (repo@sha256:<64 hex>) on a production stack",
        )
    capacity = _int(obj.get("capacity"), f"{path}.capacity", 0, 1000)
    idle = _int(obj.get("idleCapacity", capacity), f"{path}.idleCapacity", 0, capacity)
    return ColorConfig(
        color=name,
        release=release,
        image=image,
        capacity=capacity,
        idle_capacity=idle,
        container_port=_int(obj.get("containerPort", 8080), f"{path}.containerPort", 1, 65535),
        health_check_path=_text(
            obj.get("healthCheckPath", "/healthz"),
            f"{path}.healthCheckPath",
            _PATH,
            "an absolute URL path like /healthz",
        ),
    )


def parse_config(raw: Mapping[str, Any], *, project: str, stack: str) -> StackConfig:
    """Validate raw `cutover:` config values (keys without the namespace) into a StackConfig.

    Raises ConfigError naming the key, the value given and what is expected.
    """
    for key in raw:
        if key not in KNOWN_KEYS:
            raise _fail(key, raw[key], f"one of the known keys {sorted(KNOWN_KEYS)}")

    active = raw.get("activeColor")
    if active not in COLORS:
        raise _fail("activeColor", active, "blue or green (required)")
    production = _bool(raw.get("production", stack.startswith("prod")), "production")
    platform = raw.get("platform", "ecs")
    if platform not in ("ecs", "kubernetes"):
        raise _fail("platform", platform, "ecs or kubernetes")

    svc = _object(raw, "service")
    _unknown(svc, "service", {"name", "containerName", "cpu", "memory"})
    service = ServiceConfig(
        name=_text(svc.get("name"), "service.name", _NAME, "a lowercase name of 1-24 [a-z0-9-]"),
        container_name=_text(
            svc.get("containerName", "app"), "service.containerName", _NAME, "a lowercase name"
        ),
        cpu=_int(svc.get("cpu", 512), "service.cpu", 256, 16384),
        memory=_int(svc.get("memory", 1024), "service.memory", 512, 122880),
    )

    kubernetes = _kubernetes(raw) if platform == "kubernetes" else None
    on_alb = kubernetes is None or kubernetes.routing == "alb"
    network = _network(raw) if on_alb else None

    colors = _object(raw, "colors")
    _unknown(colors, "colors", set(COLORS))
    blue = _color("blue", colors.get("blue"), production)
    green = _color("green", colors.get("green"), production)

    alarm = _object(raw, "alarms", required=False)
    _unknown(
        alarm,
        "alarms",
        {
            "errorRatePercent",
            "p99LatencySeconds",
            "unhealthyHosts",
            "evaluationPeriods",
            "periodSeconds",
        },
    )
    alarms = AlarmThresholds(
        error_rate_percent=_number(
            alarm.get("errorRatePercent", 1.0), "alarms.errorRatePercent", 0.01, 100
        ),
        p99_latency_seconds=_number(
            alarm.get("p99LatencySeconds", 1.0), "alarms.p99LatencySeconds", 0.001, 60
        ),
        unhealthy_hosts=_int(alarm.get("unhealthyHosts", 1), "alarms.unhealthyHosts", 1, 1000),
        evaluation_periods=_int(
            alarm.get("evaluationPeriods", 2), "alarms.evaluationPeriods", 1, 10
        ),
        period_seconds=_int(alarm.get("periodSeconds", 60), "alarms.periodSeconds", 10, 3600),
    )
    if alarms.period_seconds not in (10, 30) and alarms.period_seconds % 60:
        raise _fail("alarms.periodSeconds", alarms.period_seconds, "10, 30 or a multiple of 60")

    traffic = _int(raw.get("trafficPercent", 100), "trafficPercent", 0, 100)
    config = StackConfig(
        project=project,
        stack=stack,
        production=production,
        platform=platform,
        active_color=active,
        traffic_percent=traffic,
        service=service,
        network=network,
        kubernetes=kubernetes,
        blue=blue,
        green=green,
        alarms=alarms,
        rollback_window_minutes=_int(
            raw.get("rollbackWindowMinutes", 60), "rollbackWindowMinutes", 0, 10080
        ),
        certificate_arn=_text(
            raw.get("certificateArn"),
            "certificateArn",
            _CERT,
            "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)",
        )
        if on_alb
        else None,
        test_listener_port=_int(raw.get("testListenerPort", 8443), "testListenerPort", 1, 65535),
        deregistration_delay_seconds=_int(
            raw.get("deregistrationDelaySeconds", 30), "deregistrationDelaySeconds", 0, 3600
        ),
        slow_start_seconds=_int(raw.get("slowStartSeconds", 30), "slowStartSeconds", 0, 900),
        gate_records=_records(raw.get("gateRecords")),
        watchdog=_watchdog(raw, production, gateway=not on_alb),
        analysis=_analysis(raw, production, gateway=not on_alb),
    )
    if config.test_listener_port == 443:
        raise _fail("testListenerPort", 443, "a port other than 443 (the production listener)")
    for color in COLORS:
        weight = config.weights[color]
        if weight > 0 and config.color(color).capacity == 0:
            raise _fail(
                f"colors.{color}.capacity",
                0,
                f"at least 1: {color} would receive {weight}% of traffic",
            )
    return config


def _watchdog(raw: Mapping[str, Any], production: bool, gateway: bool) -> WatchdogConfig:
    found = _object(raw, "watchdog", required=False)
    _unknown(found, "watchdog", {"enabled", "schedule", "image", "logRetentionDays"})
    enabled = _bool(found.get("enabled", production), "watchdog.enabled")
    schedule = found.get("schedule", "rate(1 minute)")
    match = _RATE.fullmatch(str(schedule))
    if (
        not match
        or int(match.group(1)) < 1
        or (match.group(2).startswith("minute") and int(match.group(1)) > 59)
    ):
        raise _fail(
            "watchdog.schedule", schedule, "rate(N minutes) with N from 1 to 59, or rate(N hours)"
        )
    image = found.get("image")
    if gateway and enabled and (not isinstance(image, str) or not PINNED_IMAGE.fullmatch(image)):
        raise _fail(
            "watchdog.image",
            image,
            "the cutover image for the watchdog CronJob, pinned by digest (repo@sha256:...), "
            "or watchdog.enabled false",
        )
    return WatchdogConfig(
        enabled=enabled,
        schedule=str(schedule),
        image=image if gateway else None,
        log_retention_days=_int(
            found.get("logRetentionDays", 30), "watchdog.logRetentionDays", 1, 3653
        ),
    )


def _analysis(raw: Mapping[str, Any], production: bool, gateway: bool) -> Settings:
    """`cutover:analysis`: the metric analysis of target against baseline during a shift,
    by the declaration the helper reads the stack's output with."""
    found = _object(raw, "analysis", required=False)
    try:
        return parse_analysis(found, production, gateway)
    except SettingError as e:
        raise _fail(f"analysis.{e.key}" if e.key else "analysis", e.given, e.expected) from None


def _network(raw: Mapping[str, Any]) -> Network:
    net = _object(raw, "network")
    _unknown(net, "network", {"vpcId", "publicSubnetIds", "privateSubnetIds"})
    return Network(
        vpc_id=_text(net.get("vpcId"), "network.vpcId", _VPC, "a VPC id like vpc-0a1b2c3d"),
        public_subnet_ids=_ids(
            net.get("publicSubnetIds"), "network.publicSubnetIds", _SUBNET, "subnet ids"
        ),
        private_subnet_ids=_ids(
            net.get("privateSubnetIds"), "network.privateSubnetIds", _SUBNET, "subnet ids"
        ),
    )


def _kubernetes(raw: Mapping[str, Any]) -> KubernetesConfig:
    obj = _object(raw, "kubernetes")
    _unknown(
        obj,
        "kubernetes",
        {"namespace", "routing", "gateway", "hostnames", "servicePort", "cpu", "memory"},
    )
    routing = obj.get("routing", "gateway")
    if routing not in ("gateway", "alb"):
        raise _fail(
            "kubernetes.routing",
            routing,
            "gateway (a Gateway API HTTPRoute) or alb (TargetGroupBindings to the stack's ALB)",
        )
    gateway = obj.get("gateway", {} if routing == "alb" else None)
    if not isinstance(gateway, dict) or set(gateway) - {"name", "namespace"}:
        raise _fail(
            "kubernetes.gateway", gateway, "an object with name and namespace of the Gateway"
        )
    if routing == "alb" and gateway:
        raise _fail("kubernetes.gateway", gateway, "no gateway: alb routing uses the stack's ALB")
    hostnames = obj.get("hostnames", [])
    if not isinstance(hostnames, list) or not all(
        isinstance(h, str) and _HOST.fullmatch(h) for h in hostnames
    ):
        raise _fail("kubernetes.hostnames", hostnames, "a list of DNS names")
    return KubernetesConfig(
        namespace=_text(
            obj.get("namespace"), "kubernetes.namespace", _LABEL, "a namespace name (DNS label)"
        ),
        routing=routing,
        gateway_name=_text(gateway.get("name"), "kubernetes.gateway.name", _LABEL, "a Gateway name")
        if routing == "gateway"
        else None,
        gateway_namespace=_text(
            gateway.get("namespace", obj.get("namespace")),
            "kubernetes.gateway.namespace",
            _LABEL,
            "a namespace name",
        )
        if routing == "gateway"
        else None,
        hostnames=tuple(hostnames),
        service_port=_int(obj.get("servicePort", 80), "kubernetes.servicePort", 1, 65535),
        cpu=_text(
            obj.get("cpu", "500m"), "kubernetes.cpu", _QUANTITY, "a CPU quantity like 500m or 1"
        ),
        memory=_text(
            obj.get("memory", "512Mi"),
            "kubernetes.memory",
            _QUANTITY,
            "a memory quantity like 512Mi",
        ),
    )


def _records(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _fail("gateRecords", value, "a list of gate record file paths") from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail("gateRecords", value, "a list of gate record file paths")
    return tuple(value)


def load_config() -> StackConfig:
    """Read the stack's `cutover:` config from Pulumi and validate it."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    keys = {
        k.split(":", 1)[1]
        for k in {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
        if k.startswith(f"{NAMESPACE}:")
    }
    cfg = pulumi.Config(NAMESPACE)
    raw = {k: cfg.get(k) for k in keys}
    return parse_config(
        {k: v for k, v in raw.items() if v is not None},
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
    )
