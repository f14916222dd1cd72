"""The stack's `cutover:` config, read once and validated before any resource is declared.

Each section's keys are one table (`config_keys.Key` rows: the key, its field, its type and
range, its default); `parse_config` keeps only the rules that span keys. It is pure (raw
strings in, the frozen shapes of cutover_components/stack.py out), so every rule is testable without Pulumi; `load_config`
is the one place that reads Pulumi's config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cutover_gates.analysis_config import parse_analysis
from cutover_gates.config_keys import (
    Key,
    SettingError,
    boolean,
    number,
    one_of,
    optional,
    read,
    section,
    text,
    whole,
)
from cutover_gates.contract import ALB_RESOLUTION_SECONDS, COLORS, Color
from cutover_gates.record import PINNED_IMAGE

from cutover.errors import ConfigError
from cutover_components.stack import (
    NAMESPACE,
    RATE,
    AlarmThresholds,
    ColorConfig,
    KubernetesConfig,
    Network,
    ServiceConfig,
    StackConfig,
    WatchdogConfig,
)

_SUBNET = r"subnet-[0-9a-f]{8,17}"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_QUANTITY = r"\d+(\.\d+)?(m|Ki|Mi|Gi)?"


def _image(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise SettingError(key, value, "a container image reference")
    return value


def _subnets(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise SettingError(
            key, value, "a list of at least two subnet ids (one per availability zone)"
        )
    subnet = text(_SUBNET, "subnet ids")
    ids = tuple(subnet(f"{key}[{i}]", v) for i, v in enumerate(value))
    if len(set(ids)) != len(ids):
        raise SettingError(key, value, "distinct subnet ids")
    return ids


def _hostnames(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(h, str) and _HOST.fullmatch(h) for h in value
    ):
        raise SettingError(key, value, "a list of DNS names")
    return tuple(value)


def _records(key: str, value: Any) -> tuple[str, ...]:
    expected = "a list of gate record file paths"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise SettingError(key, value, expected) from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingError(key, value, expected)
    return tuple(value)


def _alarm_period(key: str, value: Any) -> int:
    seconds = whole(10, 3600)(key, value)
    if seconds not in (10, 30) and seconds % 60:
        raise SettingError(key, seconds, "10, 30 or a multiple of 60")
    return int(seconds)


def _schedule(key: str, value: Any) -> str:
    match = RATE.fullmatch(str(value))
    if (
        not match
        or int(match.group(1)) < 1
        or (match.group(2).startswith("minute") and int(match.group(1)) > 59)
    ):
        raise SettingError(key, value, "rate(N minutes) with N from 1 to 59, or rate(N hours)")
    return str(value)


def _resolution(key: str, value: Any) -> int:
    seconds = whole(1, 60)(key, value)
    if seconds not in (1, ALB_RESOLUTION_SECONDS):
        raise SettingError(key, seconds, "60 (an ALB's metrics) or 1 (high-resolution metrics)")
    return int(seconds)


def _below(key: str, value: Any) -> Any:
    """A key read by a rule that spans keys, in its section's parser below."""
    return value


# ECS Fargate gives a container 2-120 s between SIGTERM and SIGKILL.
FARGATE_STOP_TIMEOUT = (2, 120)
# What a service's default stop timeout follows.
_DRAINED_BY = ("platform", "deregistration_delay_seconds")


def _stop_timeout(service: Mapping[str, Any]) -> int:
    """By default a container outlasts its draining: on ECS its target group's deregistration
    delay (within what Fargate allows); on Kubernetes, after its preStop hook, the longest
    request."""
    if service["platform"] == "ecs":
        low, high = FARGATE_STOP_TIMEOUT
        return max(low, min(int(service["deregistration_delay_seconds"]), high))
    return int(service["longest_request_seconds"])


# Each section's keys: the key, its field, how it is read (type and range) and its default (a
# function of the fields read before it and the section's context where another key sets it).
STACK_KEYS = {
    "activeColor": Key("active_color", one_of(COLORS, "blue or green")),
    "production": Key("production", boolean, lambda stack: stack["stack"].startswith("prod")),
    "platform": Key("platform", one_of(("ecs", "kubernetes"), "ecs or kubernetes"), "ecs"),
    "trafficPercent": Key("traffic_percent", whole(0, 100), 100),
    "service": Key("service", section),
    "colors": Key("colors", section),
    "network": Key("network", _below, None),  # an ALB's: read below
    "kubernetes": Key("kubernetes", _below, None),  # Kubernetes: read below
    "alarms": Key("alarms", section, {}),
    "rollbackWindowMinutes": Key("rollback_window_minutes", whole(0, 10080), 60),
    "certificateArn": Key("certificate_arn", _below, None),  # an ALB's
    "testListenerPort": Key("test_listener_port", whole(1, 65535), 8443),
    "deregistrationDelaySeconds": Key("deregistration_delay_seconds", whole(0, 3600), 30),
    "slowStartSeconds": Key("slow_start_seconds", whole(0, 900), 30),
    # how long the ALB keeps an idle connection, and a client sticks to a color (0: not at all)
    "idleTimeoutSeconds": Key("idle_timeout_seconds", whole(1, 4000), 60),
    "stickinessSeconds": Key("stickiness_seconds", whole(0, 604800), 0),
    "gateRecords": Key("gate_records", _records, []),
    "watchdog": Key("watchdog", section, {}),
    "analysis": Key("analysis", section, {}),
    "metricsResolutionSeconds": Key(
        "metrics_resolution_seconds", _resolution, ALB_RESOLUTION_SECONDS
    ),
}
SERVICE_KEYS = {
    "name": Key("name", text(r"[a-z][a-z0-9-]{0,23}", "a lowercase name of 1-24 [a-z0-9-]")),
    "containerName": Key(
        "container_name", text(r"[a-z][a-z0-9-]{0,23}", "a lowercase name"), "app"
    ),
    "cpu": Key("cpu", whole(256, 16384), 512),
    "memory": Key("memory", whole(512, 122880), 1024),
    # what the application does, which the pack judges the stack's draining against
    "longestRequestSeconds": Key("longest_request_seconds", whole(1, 3600), 30),
    "keepAliveSeconds": Key("keep_alive_seconds", whole(1, 86400), 75),
    "stopTimeoutSeconds": Key("stop_timeout_seconds", whole(0, 3600), _stop_timeout),
}
COLORS_KEYS: dict[str, Key] = {c: Key(c, _below, None) for c in COLORS}  # each read by _color
COLOR_KEYS = {
    "release": Key(
        "release", text(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?", "a version like 1.42.0")
    ),
    "image": Key("image", _image),
    "capacity": Key("capacity", whole(0, 1000)),
    "idleCapacity": Key("idle_capacity", whole(0, 1000), lambda color: color["capacity"]),
    "containerPort": Key("container_port", whole(1, 65535), 8080),
    "healthCheckPath": Key(
        "health_check_path",
        text(r"/[A-Za-z0-9._~/-]*", "an absolute URL path like /healthz"),
        "/healthz",
    ),
}
NETWORK_KEYS = {
    "vpcId": Key("vpc_id", text(r"vpc-[0-9a-f]{8,17}", "a VPC id like vpc-0a1b2c3d")),
    "publicSubnetIds": Key("public_subnet_ids", _subnets),
    "privateSubnetIds": Key("private_subnet_ids", _subnets),
}
ALARM_KEYS = {
    "errorRatePercent": Key("error_rate_percent", number(0.01, 100), 1.0),
    "p99LatencySeconds": Key("p99_latency_seconds", number(0.001, 60), 1.0),
    "unhealthyHosts": Key("unhealthy_hosts", whole(1, 1000), 1),
    "evaluationPeriods": Key("evaluation_periods", whole(1, 10), 2),
    "periodSeconds": Key("period_seconds", _alarm_period, 60),
}
KUBERNETES_KEYS = {
    "namespace": Key("namespace", text(_LABEL, "a namespace name (DNS label)")),
    "routing": Key(
        "routing",
        one_of(
            ("gateway", "alb"),
            "gateway (a Gateway API HTTPRoute) or alb (TargetGroupBindings to the stack's ALB)",
        ),
        "gateway",
    ),
    "gateway": Key("gateway", _below, None),  # gateway routing: read below
    "hostnames": Key("hostnames", _hostnames, []),
    "servicePort": Key("service_port", whole(1, 65535), 80),
    "cpu": Key("cpu", text(_QUANTITY, "a CPU quantity like 500m or 1"), "500m"),
    "memory": Key("memory", text(_QUANTITY, "a memory quantity like 512Mi"), "512Mi"),
    # by default as long as what drains it: the deregistration delay (alb routing) or the
    # Gateway's endpoint removal time, read below
    "preStopSeconds": Key("pre_stop_seconds", optional(whole(0, 3600)), None),
}
GATEWAY_KEYS = {
    "name": Key("gateway_name", text(_LABEL, "a Gateway name")),
    "namespace": Key(
        "gateway_namespace", text(_LABEL, "a namespace name"), lambda k: k["namespace"]
    ),
    # how long the Gateway keeps sending to an endpoint once it is removed, and its idle
    # timeout towards the pods where it has one
    "endpointRemovalSeconds": Key("endpoint_removal_seconds", whole(0, 600), 10),
    "idleTimeoutSeconds": Key("gateway_idle_timeout_seconds", optional(whole(1, 86400)), None),
}
WATCHDOG_KEYS = {
    "enabled": Key("enabled", boolean, lambda stack: stack["production"]),
    "schedule": Key("schedule", _schedule, "rate(1 minute)"),
    "image": Key("image", _below, None),  # a Gateway stack's: read below
    "logRetentionDays": Key("log_retention_days", whole(1, 3653), 30),
}
_CERTIFICATE = text(
    r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}",
    "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)",
)


def parse_config(raw: Mapping[str, Any], *, project: str, stack: str) -> StackConfig:
    """Validate raw `cutover:` config values (keys without the namespace) into a StackConfig.

    Raises ConfigError naming the key, the value given and what is expected.
    """
    try:
        return _parse(raw, project, stack)
    except SettingError as e:
        raise ConfigError(f"{NAMESPACE}:{e}") from None


def _parse(raw: Mapping[str, Any], project: str, stack: str) -> StackConfig:
    top = read(raw, STACK_KEYS, context={"stack": stack})
    production = top["production"]
    kubernetes = _kubernetes(raw, top) if top["platform"] == "kubernetes" else None
    on_alb = kubernetes is None or kubernetes.routing == "alb"
    colors = read(top.pop("colors"), COLORS_KEYS, "colors")
    config = StackConfig(
        **top
        | {
            "project": project,
            "stack": stack,
            "service": ServiceConfig(
                **read(top["service"], SERVICE_KEYS, "service", {k: top[k] for k in _DRAINED_BY})
            ),
            "network": Network(
                **read(section("network", raw.get("network")), NETWORK_KEYS, "network")
            )
            if on_alb
            else None,
            "kubernetes": kubernetes,
            "blue": _color("blue", colors["blue"], production),
            "green": _color("green", colors["green"], production),
            "alarms": AlarmThresholds(**read(top["alarms"], ALARM_KEYS, "alarms")),
            "certificate_arn": _CERTIFICATE("certificateArn", raw.get("certificateArn"))
            if on_alb
            else None,
            "watchdog": _watchdog(top["watchdog"], production, gateway=not on_alb),
            "analysis": parse_analysis(
                top["analysis"],
                production,
                gateway=not on_alb,
                resolution=top["metrics_resolution_seconds"],
            ),
        }
    )
    low, high = FARGATE_STOP_TIMEOUT
    if config.platform == "ecs" and not low <= config.service.stop_timeout_seconds <= high:
        raise SettingError(
            "service.stopTimeoutSeconds",
            config.service.stop_timeout_seconds,
            f"a whole number from {low} to {high} on ECS Fargate",
        )
    if config.test_listener_port == 443:
        raise SettingError(
            "testListenerPort", 443, "a port other than 443 (the production listener)"
        )
    for color in COLORS:
        weight = config.weights[color]
        if weight > 0 and config.color(color).capacity == 0:
            raise SettingError(
                f"colors.{color}.capacity",
                0,
                f"at least 1: {color} would receive {weight}% of traffic",
            )
    return config


def _color(name: Color, found: Any, production: bool) -> ColorConfig:
    path = f"colors.{name}"
    if not isinstance(found, dict):
        raise SettingError(path, found, "an object with release, image, capacity")
    values = read(found, COLOR_KEYS, path)
    if production and not PINNED_IMAGE.fullmatch(values["image"]):
        raise SettingError(
            f"{path}.image",
            values["image"],
            "an image pinned by digest (repo@sha256:<64 hex>) on a production stack",
        )
    if values["idle_capacity"] > values["capacity"]:
        raise SettingError(
            f"{path}.idleCapacity",
            values["idle_capacity"],
            f"a whole number from 0 to {values['capacity']}",
        )
    return ColorConfig(color=name, **values)


def _kubernetes(raw: Mapping[str, Any], top: Mapping[str, Any]) -> KubernetesConfig:
    values = read(section("kubernetes", raw.get("kubernetes")), KUBERNETES_KEYS, "kubernetes")
    gateway = values.pop("gateway")
    if values["routing"] == "alb":
        if gateway:
            raise SettingError(
                "kubernetes.gateway", gateway, "no gateway: alb routing uses the stack's ALB"
            )
        if values["pre_stop_seconds"] is None:  # until the ALB has drained the pod
            values["pre_stop_seconds"] = top["deregistration_delay_seconds"]
        return KubernetesConfig(
            **values,
            gateway_name=None,
            gateway_namespace=None,
            endpoint_removal_seconds=None,
            gateway_idle_timeout_seconds=None,
        )
    if not isinstance(gateway, dict):
        raise SettingError(
            "kubernetes.gateway", gateway, "an object with name and namespace of the Gateway"
        )
    found = read(gateway, GATEWAY_KEYS, "kubernetes.gateway", values)
    if values["pre_stop_seconds"] is None:  # until the Gateway stops sending to the pod
        values["pre_stop_seconds"] = found["endpoint_removal_seconds"]
    return KubernetesConfig(**values, **found)


def _watchdog(found: Mapping[str, Any], production: bool, gateway: bool) -> WatchdogConfig:
    values = read(found, WATCHDOG_KEYS, "watchdog", {"production": production})
    image = values["image"]
    if (
        gateway
        and values["enabled"]
        and (not isinstance(image, str) or not PINNED_IMAGE.fullmatch(image))
    ):
        raise SettingError(
            "watchdog.image",
            image,
            "the cutover image for the watchdog CronJob, pinned by digest (repo@sha256:...), "
            "or watchdog.enabled false",
        )
    return WatchdogConfig(**values | {"image": image if gateway else None})


def load_config() -> StackConfig:
    """Read the stack's `cutover:` config from Pulumi and validate it."""
    import pulumi  # only reading config needs the SDK: parse_config loads none
    from pulumi.runtime import config as runtime_config  # only reading config needs the SDK

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
