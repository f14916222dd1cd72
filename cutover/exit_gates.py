"""The production-deployment stage's exit gates, each judged with its evidence.

- deployment successful: the latest shift succeeded (with its verification at 100% when the
  stack asks for one) and the routing serves exactly what it left;
- monitoring active, read live: each color's alarms exist, notify someone and are not in
  ALARM, the dashboard exists, the watchdog's schedule is enabled (on a Gateway stack:
  Prometheus answers and the watchdog CronJob is not suspended);
- rollback tested: a valid rollback-drill record for the serving release on this stack.

`stage_exit_details` are the three verdicts a signed `stage-exit` record binds (`cutover.gate_record`).
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutover_gates.contract import COLORS, ROLLBACK_DRILL, Color, Status

from cutover.aws import client, describe_alarms
from cutover.deployment import Deployment
from cutover.journal import Journal
from cutover.kube import batch
from cutover.outputs import analysis_of
from cutover.preflight import check_gates
from cutover.service import Service
from cutover.timeline import EventType
from cutover.weights import format_weights

DEPLOYMENT_SUCCESSFUL = "deployment successful"
MONITORING_ACTIVE = "monitoring active"
ROLLBACK_TESTED = "rollback tested"


@dataclass(frozen=True)
class ExitGate:
    name: str
    passed: bool
    evidence: str

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.name, "passed": self.passed, "evidence": self.evidence}


def serving_color(service: Service) -> Color | None:
    """The color serving all traffic, or None while traffic is split."""
    served = service.router.served()
    return next((c for c in COLORS if served[c] > 0 and sum(served.values()) == served[c]), None)


def deployment_successful(service: Service, latest: Deployment | None) -> ExitGate:
    if latest is None:
        return ExitGate(DEPLOYMENT_SUCCESSFUL, False, "no shift in the journal for this stack")
    said = f"shift {latest.id} to {latest.options.target}: {latest.status}"
    if latest.status != Status.SUCCEEDED:
        reason = f" ({latest.failure})" if latest.failure else ""
        return ExitGate(DEPLOYMENT_SUCCESSFUL, False, said + reason)
    settings = analysis_of(service.outputs)
    stack_asks = settings.verify_minutes * 60 if settings else 0.0
    verified = [e for e in latest.events if e.type == EventType.VERIFIED]
    if (stack_asks or latest.options.verify_for) and not verified:
        return ExitGate(
            DEPLOYMENT_SUCCESSFUL,
            False,
            f"{said}, but not verified at 100% (the stack asks {stack_asks:g}s; --verify-for "
            f"was {latest.options.verify_for:g}s"
            + (", not completed)" if latest.options.verify_for else ")"),
        )
    served = service.router.served()
    if served != latest.plan[-1]:
        return ExitGate(
            DEPLOYMENT_SUCCESSFUL,
            False,
            f"{said}, but the routing serves {format_weights(served)}, not the "
            f"{format_weights(latest.plan[-1])} it left",
        )
    if verified:
        said += f", verified {verified[-1].seconds:g}s at 100%"
    analysis = analysis_of(service.outputs)
    if not latest.options.analysis and analysis is not None and analysis.enabled:
        said += ", with the metric analysis off (--analysis off)"
    return ExitGate(DEPLOYMENT_SUCCESSFUL, True, f"{said}; serving {format_weights(served)}")


def monitoring_active(service: Service) -> ExitGate:
    """Read live: never from the program's declarations."""
    try:
        problems, seen = (
            _aws_monitoring(service) if service.outputs.on_aws else _gateway_monitoring(service)
        )
    except Exception as e:  # noqa: BLE001 - an unreadable monitor is not an active one
        return ExitGate(MONITORING_ACTIVE, False, f"could not be read: {type(e).__name__}: {e}")
    if problems:
        return ExitGate(MONITORING_ACTIVE, False, "; ".join(problems))
    return ExitGate(MONITORING_ACTIVE, True, "; ".join(seen))


def _aws_monitoring(service: Service) -> tuple[list[str], list[str]]:
    o = service.outputs
    names = sorted({n for c in COLORS for n in o.alarm_names[c]})
    cloudwatch = client("cloudwatch")
    alarms = describe_alarms(names)
    problems = [f"alarm {n} does not exist" for n in names if n not in alarms]
    for name, alarm in sorted(alarms.items()):
        if not alarm.get("AlarmActions") or not alarm.get("ActionsEnabled", True):
            problems.append(f"alarm {name} notifies no one")
        if alarm["StateValue"] == "ALARM":
            problems.append(f"alarm {name} is in ALARM")
    if not names:
        problems.append("the stack names no alarms")
    seen = [f"{len(alarms)} alarms with actions, none in ALARM"]
    dashboard = o.dashboard
    if dashboard:
        try:
            cloudwatch.get_dashboard(DashboardName=dashboard)
            seen.append(f"dashboard {dashboard}")
        except cloudwatch.exceptions.ResourceNotFound:
            problems.append(f"dashboard {dashboard} does not exist")
    watchdog = o.watchdog or {}
    if watchdog.get("schedule"):
        rule = client("events").describe_rule(Name=watchdog["schedule"])
        if rule.get("State") != "ENABLED":
            problems.append(
                f"the watchdog's schedule {watchdog['schedule']} is {rule.get('State')}"
            )
        else:
            seen.append(f"watchdog schedule {watchdog['schedule']} enabled")
    return problems, seen


def _gateway_monitoring(service: Service) -> tuple[list[str], list[str]]:
    o = service.outputs
    problems: list[str] = []
    seen: list[str] = []
    settings = analysis_of(o)
    prometheus = (settings.prometheus or {}) if settings else {}
    if settings and settings.enabled and prometheus.get("url"):
        url = str(prometheus["url"]).rstrip("/") + "/api/v1/query?query=up"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                answered = json.load(response).get("status") == "success"
        except (OSError, ValueError):
            answered = False
        (seen if answered else problems).append(
            f"Prometheus {prometheus['url']} {'answers' if answered else 'does not answer'}"
        )
    else:
        problems.append("no metric analysis (cutover:analysis.prometheus) watches this stack")
    watchdog = o.watchdog or {}
    if watchdog.get("cronJob"):
        job = batch().read_namespaced_cron_job(watchdog["cronJob"], watchdog["namespace"])
        if job.spec.suspend:
            problems.append(f"the watchdog CronJob {watchdog['cronJob']} is suspended")
        else:
            seen.append(f"watchdog CronJob {watchdog['cronJob']} active")
    return problems, seen


def rollback_tested(
    service: Service, color: Color | None, records: list[tuple[Path, Any]], pack: dict[str, Any]
) -> ExitGate:
    if color is None:
        return ExitGate(ROLLBACK_TESTED, False, "traffic is split: no one release is serving")
    problems = check_gates(service.outputs, color, [ROLLBACK_DRILL], pack, records)
    if problems:
        return ExitGate(ROLLBACK_TESTED, False, problems[0])
    version = service.outputs.releases[color].version
    return ExitGate(ROLLBACK_TESTED, True, f"a valid rollback-drill record for {color} {version}")


def latest_shift(journal: Journal, scope: str) -> Deployment | None:
    """The latest shift (not a drill) of the services moved together under `scope`."""
    shifts = [s for s in journal.summaries(scope) if s.kind == "shift"]
    return journal.load(scope, shifts[-1].deployment) if shifts else None


def judge_exit_gates(
    service: Service,
    latest: Deployment | None,
    records: list[tuple[Path, Any]],
    pack: dict[str, Any],
) -> list[ExitGate]:
    """The three exit gates of one service, in order."""
    return [
        deployment_successful(service, latest),
        monitoring_active(service),
        rollback_tested(service, serving_color(service), records, pack),
    ]


@dataclass(frozen=True)
class StageExit:
    """One service's exit gates, and the color serving all its traffic (None while split)."""

    service: Service
    color: Color | None
    gates: list[ExitGate]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service.outputs.name,
            "color": self.color,
            "passed": self.passed,
            "gates": [g.to_json() for g in self.gates],
        }

    def render(self) -> str:
        return render_gates(self.service.outputs.name, self.gates)


def judge_stage_exit(
    services: list[Service],
    journal: Journal,
    scope: str,
    records: list[tuple[Path, Any]],
    pack: dict[str, Any],
) -> list[StageExit]:
    """The exit gates of every service moved together under `scope`."""
    latest = latest_shift(journal, scope)
    return [
        StageExit(s, serving_color(s), judge_exit_gates(s, latest, records, pack)) for s in services
    ]


def render_gates(name: str, gates: list[ExitGate]) -> str:
    lines = [f"Exit gates of {name}:"]
    lines += [f"  {'PASS' if g.passed else 'FAIL'}  {g.name}: {g.evidence}" for g in gates]
    return "\n".join(lines)


def stage_exit_details(gates: list[ExitGate]) -> dict[str, Any]:
    """What a `stage-exit` record binds besides the release: the three verdicts."""
    return {"gates": [g.to_json() for g in gates], "passed": all(g.passed for g in gates)}
