"""What an update that moves traffic must keep watched and valid: active monitoring on every
color receiving traffic, and weights that split it between the two colors; each check beside
its declaration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cutover_gates.config_schema import PolicyConfig, Setting, declare
from cutover_gates.contract import MAX_WEIGHT
from cutover_gates.facts import StackFacts
from cutover_gates.rules.policy import About, Report, Severity, StackPolicy


@dataclass(frozen=True)
class MonitoringConfig(PolicyConfig):
    required_metrics: tuple[str, ...]


def check_monitoring(facts: StackFacts, config: MonitoringConfig, report: Report) -> None:
    """Every color receiving traffic is watched: behind the ALB, alarms with actions on its own
    target group for each of `requiredMetrics`; behind a Gateway, readiness probes on every
    container (ready replicas are the guard there)."""
    if facts.routing == "gateway":
        _check_readiness(facts, report)
        return
    required = config.required_metrics
    lb_suffixes = {lb.props["arnSuffix"] for lb in facts.load_balancers}
    for color in facts.receiving():
        fleet = facts.colors[color]
        tg_suffixes = {tg.props["arnSuffix"] for tg in fleet.target_groups}
        watched: set[str] = set()
        for alarm in fleet.alarms:
            if not alarm.props.get("alarmActions"):
                continue
            for metric, dims in _alarm_metrics(alarm.props):
                if (
                    dims.get("TargetGroup") in tg_suffixes
                    and dims.get("LoadBalancer") in lb_suffixes
                ):
                    watched.add(metric)
        missing = [m for m in required if m not in watched]
        if missing:
            report(
                f"{color} will receive traffic but has no alarm with actions on its own target "
                f"group for {', '.join(missing)}. Declare them (components/monitoring.py)."
            )


def _check_readiness(facts: StackFacts, report: Report) -> None:
    """Behind a Gateway, the helper's guard is the receiving color's ready replicas: without a
    readiness probe on every container, "ready" means only "started"."""
    for color in facts.receiving():
        deployments = facts.colors[color].deployments
        unprobed = [
            str(c.get("name"))
            for d in deployments
            for c in d.containers()
            if not c.get("readinessProbe")
        ]
        if not deployments or unprobed:
            report(
                f"{color} will receive traffic but nothing watches it: "
                + (
                    f"container(s) {', '.join(unprobed)} have no readiness probe"
                    if unprobed
                    else "it has no Deployment"
                )
                + ". Ready replicas are the rollback guard behind a Gateway; declare readiness "
                "probes (components/kubernetes_color.py)."
            )


def _alarm_metrics(props: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    if props.get("metricName"):
        return [(str(props["metricName"]), props.get("dimensions") or {})]
    out = []
    for query in props.get("metricQueries") or []:
        metric = query.get("metric")
        if metric:
            out.append((str(metric.get("metricName")), metric.get("dimensions") or {}))
    return out


def check_weights(facts: StackFacts, config: PolicyConfig, report: Report) -> None:
    """The production listener or HTTPRoute splits traffic between exactly the two colors, each
    weight in range, some traffic flowing, and moves traffic only onto a color that already ran
    this release at full capacity before the update (deploy, then shift)."""
    try:
        weights = facts.weights()
    except ValueError as e:
        report(f"The production route is not a blue/green split: {e}.")
        return
    for color, weight in weights.items():
        if not 0 <= weight <= MAX_WEIGHT:
            report(f"{color} weight {weight} is out of range; expected 0-{MAX_WEIGHT}.")
    total = sum(weights.values())
    if total <= 0:
        report("Weights sum to zero: no traffic would be served. Give one color weight.")
        return
    previous = facts.previous
    for color in facts.receiving():
        fleet = facts.colors[color]
        if not fleet.desired_count():
            continue  # nothing running for its share: warm-capacity refuses it
        if facts.routing == "alb" and fleet.deployments and not fleet.bindings:
            report(
                f"{color} receives {weights[color]} of {total} weight but no TargetGroupBinding "
                "registers its pods in its target group."
            )
            continue
        if previous is None:
            continue
        before = previous.weights.get(color, 0) / (sum(previous.weights.values()) or 1)
        if weights[color] / total <= before:
            continue
        capacity = fleet.capacity() or 0
        warm = (
            previous.releases.get(color) == fleet.release()
            and previous.desired_counts.get(color, 0) >= capacity
        )
        if not warm:
            report(
                f"Traffic moves onto {color}, which was not already running release "
                f"{fleet.release()} at full capacity ({capacity}) before this update. Deploy "
                f"and scale {color} in one update, smoke-test it on the test listener, then "
                "move traffic in the next."
            )


REQUIRED_METRICS = Setting(
    "requiredMetrics",
    "required_metrics",
    {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "default": ["HTTPCode_Target_5XX_Count", "TargetResponseTime", "UnHealthyHostCount"],
    },
    lambda metrics: tuple(str(m) for m in metrics),
)

TRAFFIC = [
    StackPolicy(
        name="monitoring-active",
        check=check_monitoring,
        config=declare(MonitoringConfig, REQUIRED_METRICS),
        about=About(
            "Monitoring active",
            Severity.HIGH,
            "Declare, per color, alarms with actions on its own target group for each required metric (components/monitoring.py), or readiness probes behind a Gateway.",
            ("exit-gate", "monitoring"),
        ),
    ),
    StackPolicy(
        name="weights-valid",
        check=check_weights,
        config=declare(PolicyConfig),
        about=About(
            "Weights valid",
            Severity.CRITICAL,
            f"Split traffic between exactly the two colors with weights 0-{MAX_WEIGHT} and some traffic flowing; deploy and scale a color in one update, then move traffic onto it in the next.",
            ("traffic",),
        ),
    ),
]
