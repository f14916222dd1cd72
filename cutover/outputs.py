"""The helper's side of the stack outputs (`cutover_gates.stack_outputs` names and shapes them).

The program exports through `export_outputs`; the helper reads the JSON of
`pulumi stack output --json` through `parse_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cutover_gates.config_keys import SettingError
from cutover_gates.contract import ALB_RESOLUTION_SECONDS, COLORS, Color
from cutover_gates.output_shapes import (
    AlbMetrics,
    ColorService,
    KubernetesService,
    Release,
    Route,
    color_service_from_json,
)
from cutover_gates.stack_outputs import (
    ALARM_NAMES,
    ANALYSIS,
    JOURNAL_TABLE,
    LISTENER_ARN,
    LOAD_BALANCER_DNS_NAME,
    METRICS,
    PLATFORM,
    PROJECT,
    RELEASES,
    ROUTE,
    SERVICES,
    STACK,
    TARGET_GROUP_ARNS,
    TEST_URL,
    TOPIC_ARN,
)

if TYPE_CHECKING:
    from cutover_gates.analysis_config import Settings

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


def export_outputs(
    *,
    stack: Any,
    listener_arn: Any,
    target_group_arns: Any,
    alarm_names: Any,
    releases: Any,
    services: Any,
    journal_table: Any,
    topic_arn: Any,
    load_balancer_dns_name: Any,
    test_url: Any,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the contract's outputs (and any `extra` ones) from a Pulumi program; returns
    them (the watchdog reads the same values)."""
    import pulumi

    values = {
        STACK: stack,
        LISTENER_ARN: listener_arn,
        TARGET_GROUP_ARNS: target_group_arns,
        ALARM_NAMES: alarm_names,
        RELEASES: releases,
        SERVICES: services,
        JOURNAL_TABLE: journal_table,
        TOPIC_ARN: topic_arn,
        LOAD_BALANCER_DNS_NAME: load_balancer_dns_name,
        TEST_URL: test_url,
        **(extra or {}),
    }
    for key, value in values.items():
        pulumi.export(key, value)
    return values


def export_kubernetes_outputs(
    *, stack: Any, route: Any, releases: Any, services: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """Export a Kubernetes stack's outputs: the route's namespace and name replace the listener."""
    import pulumi

    values = {
        STACK: stack,
        PLATFORM: "kubernetes",
        ROUTE: route,
        RELEASES: releases,
        SERVICES: services,
    }
    values = {**values, **extra}
    for key, value in values.items():
        pulumi.export(key, value)
    return values


T = TypeVar("T")


class StackOutputs:
    """A stack's outputs as the helper needs them, validated.

    `routing` is `alb` (a weighted listener: ECS, or Kubernetes bound to the ALB) or `gateway`
    (a Kubernetes HTTPRoute); `platform` (`ecs` or `kubernetes`) says what runs each color.
    """

    def __init__(self, data: dict[str, Any], source: str) -> None:
        from cutover.errors import ConfigError

        def fail(key: str, expected: str) -> ConfigError:
            return ConfigError(f"{source}: output {key!r} {expected}")

        def shape(key: str, parse: Callable[[Any], T], value: Any) -> T:
            """`value` parsed by its shape's from_json; one line naming the output otherwise."""
            try:
                return parse(value)
            except ValueError as e:
                raise fail(key, str(e)) from None

        self.routing = "gateway" if ROUTE in data and LISTENER_ARN not in data else "alb"
        required = REQUIRED if self.routing == "alb" else (STACK, ROUTE, RELEASES, SERVICES)
        missing = [k for k in required if k not in data]
        if missing:
            raise ConfigError(
                f"{source}: missing outputs {missing}; expected the JSON of `pulumi stack output --json` "
                "for a cutover stack"
            )
        mapped = (RELEASES, SERVICES) + (
            (TARGET_GROUP_ARNS, ALARM_NAMES) if self.routing == "alb" else ()
        )
        for key in mapped:
            if not isinstance(data[key], dict) or set(data[key]) != set(COLORS):
                raise fail(key, "must map exactly blue and green")
        named = (STACK,) + (
            (LISTENER_ARN, JOURNAL_TABLE, TOPIC_ARN) if self.routing == "alb" else ()
        )
        for key in named:
            if not isinstance(data[key], str) or not data[key]:
                raise fail(key, "must be a non-empty string")
        self.platform = str(data.get(PLATFORM, "ecs"))
        if self.platform not in ("ecs", "kubernetes"):
            raise fail(PLATFORM, "must be ecs or kubernetes")
        self.route = (
            shape(ROUTE, Route.from_json, data[ROUTE]) if self.routing == "gateway" else None
        )
        self.source = source
        self.data = data
        self.stack: str = data[STACK]
        self.project: str = str(data.get(PROJECT, "cutover"))
        self.listener_arn: str = str(data.get(LISTENER_ARN, ""))
        self.target_group_arns: dict[str, str] = dict(data.get(TARGET_GROUP_ARNS) or {})
        self.alarm_names: dict[str, list[str]] = {
            c: list((data.get(ALARM_NAMES) or {}).get(c, [])) for c in COLORS
        }
        self.releases: dict[Color, Release] = {
            c: shape(f"{RELEASES}.{c}", Release.from_json, data[RELEASES][c]) for c in COLORS
        }
        services = {c: data[SERVICES][c] for c in COLORS}
        self.services: dict[Color, ColorService] = {
            c: shape(f"{SERVICES}.{c}", color_service_from_json,
                     {"platform": self.platform, **found} if isinstance(found, dict) else found)
            for c, found in services.items()
        }  # fmt: skip
        for c, found in self.services.items():
            if found.platform != self.platform:
                raise fail(f"{SERVICES}.{c}", f"platform must be the stack's ({self.platform})")
        self.journal_table: str | None = data.get(JOURNAL_TABLE)
        self.topic_arn: str | None = data.get(TOPIC_ARN)
        self.test_url: str | None = data.get(TEST_URL)
        metrics = data.get(METRICS)
        self.metrics = None if metrics is None else shape(METRICS, AlbMetrics.from_json, metrics)

    @cached_property
    def analysis(self) -> Settings | None:
        """The stack's `cutover:analysis` settings (output `analysis`), read by the same
        declaration the program validates them with, where they are used (a rollback process
        never reads them); ConfigError when malformed."""
        from cutover_gates.analysis_config import parse_analysis

        from cutover.errors import ConfigError

        if self.data.get(ANALYSIS) is None:
            return None
        if not isinstance(self.data[ANALYSIS], dict):
            raise ConfigError(
                f"{self.source}: output {ANALYSIS!r} is {self.data[ANALYSIS]!r}; expected an "
                "object of cutover:analysis settings"
            )
        try:
            # an output naming an analysis without `enabled` has it on: never silently off
            found = {"enabled": True, **self.data[ANALYSIS]}
            resolution = self.metrics.resolution_seconds if self.metrics else ALB_RESOLUTION_SECONDS
            return parse_analysis(found, False, self.routing == "gateway", resolution)
        except SettingError as e:
            raise ConfigError(f"{self.source}: output {ANALYSIS!r}: {e}") from None

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


def load_outputs(path: str) -> StackOutputs:
    """Read `pulumi stack output --json` saved to `path`; ConfigError naming what is wrong."""
    import json

    from cutover.errors import ConfigError

    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"--outputs {path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"--outputs {path}: not UTF-8 text; expected the JSON of `pulumi stack output --json`"
        ) from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"--outputs {path}: not JSON ({e.msg} at line {e.lineno}); expected "
            "the output of `pulumi stack output --json`"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"--outputs {path}: expected a JSON object of stack outputs")
    return StackOutputs(data, f"--outputs {path}")


def load_all_outputs(files: tuple[Path, ...], stack: str | None) -> list[StackOutputs]:
    """The outputs of each service: from `--outputs FILE` (repeatable), or from the Pulumi CLI
    with `--stack NAME`."""
    import json
    import shutil
    import subprocess

    from cutover.errors import ConfigError

    if files and stack:
        raise ConfigError("give --outputs or --stack, not both")
    if stack:
        if shutil.which("pulumi") is None:
            raise ConfigError(
                "--stack needs the Pulumi CLI on PATH; save the outputs and use --outputs FILE"
            )
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ConfigError(
                f"--stack {stack}: `pulumi stack output` failed: {result.stderr.strip()}"
            )
        try:
            data = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise ConfigError(
                f"--stack {stack}: `pulumi stack output --json` is not JSON"
            ) from None
        return [StackOutputs(data, f"--stack {stack}")]
    if not files:
        raise ConfigError(
            "no stack given; pass --outputs FILE (the JSON of `pulumi stack output --json`) or --stack NAME"
        )
    return [load_outputs(str(p)) for p in files]
