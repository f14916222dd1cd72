"""What an update that moves traffic must keep to be given back: a warm previous color (its
fleet, what routes to it and its full capacity) and the stack's own watchdog; each check
beside its declaration."""

from __future__ import annotations

from dataclasses import dataclass

from cutover_gates.config_schema import PolicyConfig, Setting, declare
from cutover_gates.contract import WATCHDOG_CRON_JOB
from cutover_gates.facts import (
    ALARM,
    CRON_JOB_TYPES,
    EVENT_RULE,
    EVENT_TARGET,
    FUNCTION,
    ColorFacts,
    StackFacts,
)
from cutover_gates.rollback_window import keeps_full_capacity
from cutover_gates.rules.gates import moving_colors
from cutover_gates.rules.policy import About, Report, Severity, StackPolicy, utc_now


@dataclass(frozen=True)
class RollbackReadyConfig(PolicyConfig):
    rollback_window_minutes: int


def check_rollback_ready(facts: StackFacts, config: RollbackReadyConfig, report: Report) -> None:
    """The color that served traffic (in this update, the previous one, or within
    `rollbackWindowMinutes`) keeps its fleet, what routes to it, and its full capacity, so
    traffic can be given back to it at once."""
    weights = facts.weights()
    window = config.rollback_window_minutes
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


def check_watchdog(facts: StackFacts, config: PolicyConfig, report: Report) -> None:
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


ROLLBACK_WINDOW_MINUTES = Setting(
    "rollbackWindowMinutes",
    "rollback_window_minutes",
    {"type": "integer", "minimum": 0, "default": 60},
    int,
)

ROLLBACK = [
    StackPolicy(
        name="rollback-ready",
        check=check_rollback_ready,
        config=declare(RollbackReadyConfig, ROLLBACK_WINDOW_MINUTES),
        about=About(
            "Rollback ready",
            Severity.HIGH,
            "Keep the color traffic moves away from, and what routes to it, at full capacity in this update and for rollbackWindowMinutes; scale it down in a later update.",
            ("rollback",),
        ),
    ),
    StackPolicy(
        name="watchdog-active",
        check=check_watchdog,
        config=declare(PolicyConfig),
        about=About(
            "Watchdog active",
            Severity.HIGH,
            "Set cutover:watchdog.enabled (the default on production) and deploy it before moving traffic; keep its schedule enabled and its error alarm with actions.",
            ("rollback", "monitoring"),
        ),
    ),
]
