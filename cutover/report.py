"""Deployment reports: timeline, success rate, downtime, rollback time; and the stage's KPIs.

Figures come from the journal, one `Summary` per deployment (cutover.summary says how each is
counted).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover.deployment import Deployment
from cutover.evidence import ALPHA, THRESHOLD
from cutover.summary import Ending, Summary
from cutover.timeline import Failure
from cutover.weights import format_weights


def figures(deployment: Deployment) -> dict[str, Any]:
    """The key figures of one deployment, as the report and the notifier give them."""
    summary = Summary.of(deployment)
    return {
        "shiftSeconds": summary.shift_seconds,
        "downtimeSeconds": summary.downtime_seconds,
        "failedRequests": summary.failed_requests,
        "totalRequests": summary.total_requests,
        "failedRequestSeconds": summary.failed_request_seconds,
        "rollbackSeconds": summary.rollback_seconds,
        "restoreWriteSeconds": summary.restore_write_seconds,
    }


def failed_requests_said(failed: int | None, total: int | None, seconds: float | None) -> str:
    """`3 of 14,000 (0.0214%); 1 s with any failing`, or `not measured`."""
    if failed is None or total is None:
        return "not measured (no downtime guard ran: the metric analysis was off)"
    share = f" ({100 * failed / total:.3g}%)" if total else ""
    return f"{failed:,} of {total:,}{share}; {seconds or 0:g} s with any failing"


def success_rate(summaries: Iterable[Summary]) -> dict[str, Any]:
    """Deployments (finished shifts that moved traffic; drills excluded) and how many
    succeeded, counting one an operator rolled back after it succeeded as a success."""
    counted = [s for s in summaries if s.counted]
    succeeded = sum(1 for s in counted if s.succeeded)
    return {
        "deployments": len(counted),
        "succeeded": succeeded,
        "successRate": round(succeeded / len(counted), 4) if counted else None,
    }


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3]


def analysis_rows(deployment: Deployment) -> list[dict[str, Any]]:
    """Each verdict of the metric analysis with both colors' figures, in time order."""
    return [
        {"at": _time(s.t), "weights": s.weights, **s.analysis}
        for s in deployment.samples
        if s.analysis is not None
    ]


def downtime_rows(deployment: Deployment) -> list[dict[str, Any]]:
    """Each window the downtime guard judged, with its counts, in time order."""
    return [
        {"at": _time(s.t), "weights": s.weights, **s.downtime}
        for s in deployment.samples
        if s.downtime is not None
    ]


def report_json(
    deployment: Deployment,
    history: Iterable[Summary],
    exit_gates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report's data; `exit_gates`: the stage's exit gates as judged now (None: not judged)."""
    failure = deployment.failure
    return {
        "deployment": deployment.id,
        "services": deployment.services,
        "target": deployment.target,
        "status": str(deployment.status),
        "failure": {"reason": failure.reason, "detail": failure.detail} if failure else None,
        **figures(deployment),
        "measuredOnLoopback": deployment.on_loopback,
        **success_rate(history),
        "timeline": [{"at": _time(e.t), "type": e.type, **e.detail} for e in deployment.events],
        "analysisOn": deployment.options.analysis,
        "analysis": analysis_rows(deployment),
        "downtime": downtime_rows(deployment),
        "exitGates": exit_gates,
    }


def report_markdown(data: dict[str, Any], plot: Path | None) -> str:
    rate = data["successRate"]
    lines = [
        f"# Deployment {data['deployment']}",
        "",
        f"- Services: {', '.join(data['services'])}",
        f"- Target color: {data['target']}",
        f"- Outcome: **{data['status']}**"
        + (f" ({Failure(**data['failure'])})" if data["failure"] else ""),
        "- Metric analysis: "
        + ("on" if data["analysisOn"] else "off for this deployment (--analysis off)"),
        f"- Shift duration: {data['shiftSeconds']} s",
        f"- Downtime: {data['downtimeSeconds']} s (a serving color without healthy targets, or "
        "a probe failing)",
        "- Failed requests during the shift (at the load balancer or Gateway itself): "
        + failed_requests_said(
            data["failedRequests"], data["totalRequests"], data["failedRequestSeconds"]
        ),
        f"- Rollback time: {data['rollbackSeconds']} s"
        + (
            " (measured against a local emulator on 127.0.0.1, not a cloud)"
            if data["measuredOnLoopback"]
            else ""
        )
        if data["rollbackSeconds"] is not None
        else "- Rollback time: no rollback",
        f"- Deployment success rate: {data['succeeded']}/{data['deployments']}"
        + (f" ({rate:.0%})" if rate is not None else ""),
        "",
        "## Timeline",
        "",
        "| time (UTC) | event | detail |",
        "| --- | --- | --- |",
    ]
    for event in data["timeline"]:
        detail = {k: v for k, v in event.items() if k not in ("at", "type")}
        lines.append(
            f"| {event['at']} | {event['type']} | {json.dumps(detail) if detail else ''} |"
        )
    lines += _analysis_table(data["analysis"]) + _downtime_table(data["downtime"])
    lines += _exit_gates_table(data["exitGates"])
    if plot is not None:
        lines += ["", f"![weights and guards]({plot.name})"]
    return "\n".join(lines) + "\n"


def _analysis_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["", "## Metric analysis", "", "No window was judged (off, or no bake long enough)."]

    def side(figures: dict[str, Any]) -> str:
        rate = "n/a" if figures["errorRate"] is None else f"{figures['errorRate']:.2f}%"
        latency = "n/a" if figures["latency"] is None else f"{figures['latency']:.3f}s"
        return f"{figures['color']}: {figures['requests']} req, {rate}, {latency}"

    def evidence(metric: dict[str, Any] | None) -> str:
        if not metric or metric.get("evidence") is None:
            return "n/a"
        said = _evidence_said(float(metric["evidence"])) + (
            " **failed**" if metric["failed"] else ""
        )
        return said + (" (dry run)" if metric.get("dryRun") else "")

    lines = [
        "",
        "## Metric analysis",
        "",
        f"Target against baseline ({rows[0].get('statistic', '')} latency), per window judged. "
        f"Evidence is the log e-value of the sequential test (highest over the looks so far); "
        f"it fails a metric at {THRESHOLD:.2f}, log(1/{ALPHA:g}), however often it is judged.",
        "",
        "| time (UTC) | weights | verdict | target | baseline | evidence (errors, latency) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        metrics = row.get("metrics") or {}
        lines.append(
            f"| {row['at']} | {format_weights(row['weights'])} | "
            f"{row['state']} | {side(row['target'])} | {side(row['baseline'])} | "
            f"{evidence(metrics.get('errorRate'))}, {evidence(metrics.get('latency'))} |"
        )
    return lines


def _downtime_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["", "## Downtime guard", "", "No window was judged (the analysis off, or no "
                "traffic moved)."]  # fmt: skip

    def counted(figures: dict[str, Any]) -> str:
        share = figures.get("failedPercent")
        said = "n/a" if share is None else f"{share:.3g}%"
        return f"{figures['failed']} of {figures['requests']} ({said})"

    lines = [
        "",
        "## Downtime guard",
        "",
        "Requests that failed at the load balancer (or Gateway) itself, from the shift's first "
        "write on, against its windows just before it, per window judged; it fails when the "
        f"failed share is more than {rows[0].get('maxIncrease', 0):g} points above the share "
        f"before, at evidence {THRESHOLD:.2f} (the analysis's test).",
        "",
        "| time (UTC) | weights | verdict | failed during | seconds with any | failed before | "
        "evidence |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        during, before = row.get("during") or {}, row.get("before") or {}
        evidence = row.get("evidence")
        lines.append(
            f"| {row['at']} | {format_weights(row['weights'])} | {row['state']} | "
            f"{counted(during) if during else 'n/a'} | {during.get('failedSeconds', 'n/a')} | "
            f"{counted(before) if before else 'n/a'} | "
            f"{_evidence_said(evidence) if evidence is not None else 'n/a'} |"
        )
    return lines


def _evidence_said(value: float) -> str:
    """An e-value's log as a table shows it: an e-value of 0 is `none`, not `-inf`."""
    return "none" if value == -math.inf else "∞" if value == math.inf else f"{value:.2f}"


def _exit_gates_table(gates: list[dict[str, Any]] | None) -> list[str]:
    lines = ["", "## Exit gates", ""]
    if gates is None:
        return lines + ["Not judged: give `--records` and `--gates-config` to judge them."]
    lines += ["| service | gate | verdict | evidence |", "| --- | --- | --- | --- |"]
    for service in gates:
        for gate in service["gates"]:
            verdict = "pass" if gate["passed"] else "**FAIL**"
            lines.append(
                f"| {service['service']} | {gate['gate']} | {verdict} | {gate['evidence']} |"
            )
    return lines


# Why lead time for changes (DORA: from a change's commit to it running in production) is not
# given: cutover sees a release from its shift on, never its commit.
LEAD_TIME_NOT_MEASURED = "not measured: cutover sees a release from its shift on, not its commit"


def kpis(summaries: Iterable[Summary], days: float) -> dict[str, Any]:
    """The stage's key figures over the deployments of the last `days`, added up one summary
    at a time (cutover.summary says what counts as a deployment and how each ends): how many,
    how many succeeded, what rolled back the others, the operators' rollbacks after a success
    apart, downtime in total and per deployment (the seconds without service, and the requests
    that failed at the load balancer where the downtime guard counted them), rollback time as
    p50/p95/max, the mean shift
    duration, and the DORA figures: deployment frequency (successes a day), change failure rate
    (deployments rolled back before they succeeded), time to restore (of those) and lead time
    (not measured)."""
    finished = [s for s in summaries if s.finished_shift]
    shifts = [s for s in finished if s.counted]
    failed = [s for s in shifts if s.change_failed]
    rollbacks = sorted(s.rollback_seconds for s in shifts if s.rollback_seconds is not None)
    restores = sorted(
        s.time_to_restore_seconds for s in failed if s.time_to_restore_seconds is not None
    )
    durations = [s.shift_seconds for s in shifts]
    rate = success_rate(shifts)
    measured = [s for s in shifts if s.failed_requests is not None]
    return {
        **rate,
        "rolledBack": len(failed),
        "rolledBackBy": dict(sorted(Counter(s.cause or "unknown" for s in failed).items())),
        "rolledBackAfterSuccess": sum(1 for s in shifts if s.rolled_back_after_success),
        "givenBackBeforeMoving": len(finished) - len(shifts),
        "downtimeSeconds": round(sum(s.downtime_seconds for s in shifts), 3),
        "failedRequests": sum(s.failed_requests or 0 for s in measured) if measured else None,
        "totalRequests": sum(s.total_requests or 0 for s in measured) if measured else None,
        "failedRequestSeconds": (
            round(sum(s.failed_request_seconds or 0.0 for s in measured), 3) if measured else None
        ),
        "requestsMeasured": len(measured),  # deployments whose downtime guard counted them
        "perDeployment": [
            {
                "deployment": s.deployment,
                "ending": str(s.ending),
                "cause": s.cause,
                "downtimeSeconds": s.downtime_seconds,
                "failedRequests": s.failed_requests,
                "totalRequests": s.total_requests,
                "failedRequestSeconds": s.failed_request_seconds,
                "rollbackSeconds": s.rollback_seconds,
                "shiftSeconds": s.shift_seconds,
            }
            for s in shifts
        ],
        "rollbackSeconds": _spread(rollbacks),
        "meanShiftSeconds": round(statistics.fmean(durations), 3) if durations else None,
        "deploymentsPerDay": round(rate["succeeded"] / days, 3) if days > 0 else None,
        "changeFailureRate": round(len(failed) / len(shifts), 4) if shifts else None,
        "timeToRestoreSeconds": _spread(restores),
        "leadTimeSeconds": None,  # LEAD_TIME_NOT_MEASURED
    }


def _spread(ordered: list[float]) -> dict[str, float | None]:
    """p50, p95 and max of sorted figures (None for each when there are none)."""

    def quantile(q: int) -> float | None:
        if not ordered:
            return None
        if len(ordered) == 1:
            return ordered[0]
        return round(statistics.quantiles(ordered, n=100, method="inclusive")[q - 1], 3)

    return {"p50": quantile(50), "p95": quantile(95), "max": ordered[-1] if ordered else None}


def _said(value: float | None, unit: str = " s") -> str:
    """A figure in Markdown: `n/a` when there is none."""
    return "n/a" if value is None else f"{value:g}{unit}"


def _outcome(row: dict[str, Any]) -> str:
    """A deployment's ending in the table, with who or what gave the traffic back."""
    if row["ending"] == Ending.ROLLED_BACK_AFTER_SUCCESS:
        return f"{row['ending']} (by an operator)"
    if row["ending"] == Ending.ROLLED_BACK and row["cause"]:
        return f"{row['ending']} ({row['cause']})"
    return str(row["ending"])


def _failed_cell(row: dict[str, Any]) -> str:
    """A deployment's failed requests in the KPIs' table: `3 of 14000`, or `n/a`."""
    if row.get("failedRequests") is None or row.get("totalRequests") is None:
        return "n/a"
    return f"{row['failedRequests']} of {row['totalRequests']}"


def kpis_markdown(data: dict[str, Any]) -> str:
    rate, failures = data["successRate"], data["changeFailureRate"]
    rollback, restore = data["rollbackSeconds"], data["timeToRestoreSeconds"]
    causes = ", ".join(f"{cause}: {n}" for cause, n in data["rolledBackBy"].items())
    lines = [
        f"# Deployment KPIs since {data['since']}",
        "",
        f"- Deployments (shifts that moved traffic): {data['deployments']}, succeeded: "
        f"{data['succeeded']}" + (f" ({rate:.0%})" if rate is not None else ""),
        f"- Rolled back before they succeeded: {data['rolledBack']}"
        + (f" ({causes})" if causes else ""),
        f"- Rolled back by an operator after they succeeded: {data['rolledBackAfterSuccess']} "
        "(`cutover rollback`; successes, not failed changes)",
        f"- Given back before any traffic moved: {data['givenBackBeforeMoving']} (not counted)",
        f"- Downtime: {_said(data['downtimeSeconds'])} in total (a serving color without healthy "
        "targets, or a probe failing)",
        "- Failed requests at the load balancer or Gateway itself: "
        + (
            failed_requests_said(
                data["failedRequests"], data["totalRequests"], data["failedRequestSeconds"]
            )
            + f" over the {data['requestsMeasured']} deployment(s) that counted them"
            if data["requestsMeasured"]
            else "not measured (no deployment ran the downtime guard)"
        ),
        f"- Rollback time: p50 {_said(rollback['p50'])}, p95 {_said(rollback['p95'])}, "
        f"max {_said(rollback['max'])}",
        f"- Mean shift duration: {_said(data['meanShiftSeconds'])}",
        f"- Deployment frequency: {_said(data['deploymentsPerDay'], '')} succeeded a day",
        "- Change failure rate: "
        + ("n/a" if failures is None else f"{failures:.0%} (rolled back before they succeeded)"),
        f"- Time to restore: p50 {_said(restore['p50'])}, max {_said(restore['max'])}",
        f"- Lead time for changes: {LEAD_TIME_NOT_MEASURED}",
        "",
        "| deployment | outcome | downtime (s) | failed requests | rollback (s) | duration (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['deployment']} | {_outcome(r)} | {_said(r['downtimeSeconds'], '')} | "
        f"{_failed_cell(r)} | "
        f"{_said(r['rollbackSeconds'], '') if r['rollbackSeconds'] is not None else 'none'} | "
        f"{_said(r['shiftSeconds'], '')} |"
        for r in data["perDeployment"]
    ]
    return "\n".join(lines)
