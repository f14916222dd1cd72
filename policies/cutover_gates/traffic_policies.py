"""What an update that moves traffic must keep: a warm previous color, active monitoring, valid
weights and a live watchdog; each check beside its declaration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    Severity,
)

from cutover_gates.config_schema import DEFAULT_METRICS
from cutover_gates.contract import (
    MAX_WEIGHT,
    WATCHDOG_CRON_JOB,
)
from cutover_gates.facts import (
    ALARM,
    CRON_JOB_TYPES,
    EVENT_RULE,
    EVENT_TARGET,
    FUNCTION,
    ColorFacts,
    StackFacts,
)
from cutover_gates.gate_policies import moving_colors
from cutover_gates.policy import (
    About,
    GatePolicy,
    Report,
    utc_now,
)
from cutover_gates.rollback_window import keeps_full_capacity


def check_rollback_ready(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """The color that served traffic (in this update, the previous one, or within
    `rollbackWindowMinutes`) keeps its fleet, what routes to it, and its full capacity, so
    traffic can be given back to it at once."""
    weights = facts.weights()
    window = int(config.get("rollbackWindowMinutes", 60))
    now = utc_now()
    for color, fleet in facts.colors.items():
        if not keeps_full_capacity(color, weights, facts.previous, window, now):
            continue
        missing = _missing(fleet, facts.routing)
        if missing:
            report(
                f"{color} is the rollback target (it served traffic, or did within "
                f"{window} min) but this update removes its {missing}. Keep it until the "
                "rollback window has passed."
            )
            continue
        capacity, desired = fleet.capacity(), fleet.desired_count()
        if capacity is None or desired is None or desired < capacity:
            report(
                f"{color} is the rollback target but this update scales it to {desired} of its "
                f"capacity {capacity}. Keep it at full capacity in the update that moves traffic "
                f"away from it and for {window} min after; scale it down in a later update."
            )


def _missing(fleet: ColorFacts, routing: str) -> str | None:
    """What the color lacks to take traffic back: its fleet, or what routes to it."""
    if not fleet.fleet:
        return "service or Deployment"
    if routing == "alb" and not fleet.target_groups:
        return "target group"
    if routing == "alb" and fleet.deployments and not fleet.bindings:
        return "TargetGroupBinding (its pods would leave the target group)"
    if routing == "gateway" and not fleet.kubernetes_services:
        return "Service"
    return None


def check_monitoring(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """Every color receiving traffic is watched: behind the ALB, alarms with actions on its own
    target group for each of `requiredMetrics`; behind a Gateway, readiness probes on every
    container (ready replicas are the guard there)."""
    if facts.routing == "gateway":
        _check_readiness(facts, report)
        return
    required = list(config.get("requiredMetrics") or DEFAULT_METRICS)
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


def check_weights(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
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
        desired = fleet.desired_count()
        if not desired:
            report(f"{color} receives {weights[color]} of {total} weight but runs no tasks.")
            continue
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


def check_watchdog(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """An update that moves traffic happens only on a stack whose own watchdog runs: on AWS an
    enabled schedule targeting the watchdog function, and an alarm with actions on its errors;
    on a Gateway stack the CronJob `cutover-watchdog`, not suspended. Without it, a shift whose
    process dies leaves traffic split until a person notices."""
    if not moving_colors(facts):
        return
    how = "Set cutover:watchdog (enabled: true) and deploy it before moving traffic."
    if facts.routing == "gateway":
        jobs = facts.of_watchdog(*CRON_JOB_TYPES)
        if not jobs:
            report(
                f"This update moves traffic but the stack has no CronJob {WATCHDOG_CRON_JOB}. {how}"
            )
        elif any((j.props.get("spec") or {}).get("suspend") for j in jobs):
            report(f"The watchdog CronJob {WATCHDOG_CRON_JOB} is suspended. Unsuspend it. {how}")
        return
    rules = [
        r
        for r in facts.of_watchdog(EVENT_RULE)
        if r.props.get("state", "ENABLED") == "ENABLED"
        and r.props.get("isEnabled", True) is not False
    ]
    functions = {str(f.props.get("arn")) for f in facts.of_watchdog(FUNCTION)}
    rule_names = {str(r.props.get("name")) for r in rules}
    targeted = [
        t
        for t in facts.of_watchdog(EVENT_TARGET)
        if str(t.props.get("rule")) in rule_names and str(t.props.get("arn")) in functions
    ]
    alarms = [a for a in facts.of_watchdog(ALARM) if a.props.get("alarmActions")]
    missing = [
        what
        for what, found in (
            ("an enabled schedule", rules),
            ("a schedule target on the watchdog function", targeted),
            ("an alarm with actions on the watchdog's errors", alarms),
        )
        if not found
    ]
    if missing:
        report(
            f"This update moves traffic but the stack's watchdog lacks {', '.join(missing)}. {how}"
        )


TRAFFIC = [
    GatePolicy(
        "rollback-ready",
        check_rollback_ready,
        About(
            "Rollback ready",
            Severity.HIGH,
            "Keep the color traffic moves away from, and what routes to it, at full capacity in this update and for rollbackWindowMinutes; scale it down in a later update.",
            ("rollback",),
        ),
    ),
    GatePolicy(
        "monitoring-active",
        check_monitoring,
        About(
            "Monitoring active",
            Severity.HIGH,
            "Declare, per color, alarms with actions on its own target group for each required metric (components/monitoring.py), or readiness probes behind a Gateway.",
            ("exit-gate", "monitoring"),
        ),
    ),
    GatePolicy(
        "weights-valid",
        check_weights,
        About(
            "Weights valid",
            Severity.CRITICAL,
            f"Split traffic between exactly the two colors with weights 0-{MAX_WEIGHT} and some traffic flowing; deploy and scale a color in one update, then move traffic onto it in the next.",
            ("traffic",),
        ),
    ),
    GatePolicy(
        "watchdog-active",
        check_watchdog,
        About(
            "Watchdog active",
            Severity.HIGH,
            "Set cutover:watchdog.enabled (the default on production) and deploy it before moving traffic; keep its schedule enabled and its error alarm with actions.",
            ("rollback", "monitoring"),
        ),
    ),
]
