"""Deployment reports: timeline, success rate, downtime, rollback time, and a plot.

Figures come from the journal: downtime is the time during which a color serving traffic
had no healthy targets or a probe failed (from guard samples); rollback time runs from the
failure being observed to the restored weights being read back as served.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover_gates.contract import Status

from cutover.deployment import Deployment


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def figures(deployment: Deployment) -> dict[str, Any]:
    """The key figures of one deployment."""
    samples = deployment.samples
    downtime = 0.0
    for this, following in zip(samples, samples[1:], strict=False):
        if not this.ok:
            downtime += following.t - this.t
    if samples and not samples[-1].ok:
        end = deployment.timings.restored_at or samples[-1].t
        downtime += max(0.0, end - samples[-1].t)
    finished = deployment.finished_at or (samples[-1].t if samples else None)
    return {
        "shiftSeconds": round((finished or deployment.started_at) - deployment.started_at, 3),
        "downtimeSeconds": round(downtime, 3),
        "rollbackSeconds": _rounded(deployment.timings.rollback_seconds),
        "restoreWriteSeconds": _rounded(deployment.timings.restore_write_seconds),
    }


def success_rate(history: list[Deployment]) -> dict[str, Any]:
    """Shifts that succeeded among finished shifts (drills excluded)."""
    shifts = [d for d in history if d.options.kind == "shift"]
    finished = [d for d in shifts if d.status.finished]
    succeeded = sum(1 for d in finished if d.status == Status.SUCCEEDED)
    return {
        "deployments": len(finished),
        "succeeded": succeeded,
        "successRate": round(succeeded / len(finished), 4) if finished else None,
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


def report_json(
    deployment: Deployment,
    history: list[Deployment],
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
        "analysis": analysis_rows(deployment),
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
        + (
            f" ({data['failure']['reason']}: {data['failure']['detail']})"
            if data["failure"]
            else ""
        ),
        f"- Shift duration: {data['shiftSeconds']} s",
        f"- Downtime: {data['downtimeSeconds']} s",
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
    lines += _analysis_table(data["analysis"]) + _exit_gates_table(data["exitGates"])
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

    lines = [
        "",
        "## Metric analysis",
        "",
        f"Target against baseline ({rows[0].get('statistic', '')} latency), per window judged.",
        "",
        "| time (UTC) | weights | verdict | target | baseline | p (errors, latency) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        p = row.get("p") or {}
        lines.append(
            f"| {row['at']} | blue {row['weights']['blue']} / green {row['weights']['green']} | "
            f"{row['state']} | {side(row['target'])} | {side(row['baseline'])} | "
            f"{p.get('errorRate', 'n/a')}, {p.get('latency', 'n/a')} |"
        )
    return lines


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


def kpis(history: list[Deployment]) -> dict[str, Any]:
    """The stage's key figures over finished shifts (drills excluded): how many, how many
    succeeded, downtime in total and per deployment, rollback time as p50/p95/max, and the mean
    shift duration."""
    import statistics

    shifts = [d for d in history if d.options.kind == "shift" and d.status.finished]
    numbers = [(d, figures(d)) for d in shifts]
    rollbacks = sorted(n["rollbackSeconds"] for _, n in numbers if n["rollbackSeconds"] is not None)
    durations = [n["shiftSeconds"] for _, n in numbers]

    def quantile(q: int) -> float | None:
        if not rollbacks:
            return None
        if len(rollbacks) == 1:
            return rollbacks[0]
        return round(statistics.quantiles(rollbacks, n=100, method="inclusive")[q - 1], 3)

    return {
        **success_rate(shifts),
        "downtimeSeconds": round(sum(n["downtimeSeconds"] for _, n in numbers), 3),
        "perDeployment": [
            {
                "deployment": d.id,
                "status": str(d.status),
                "downtimeSeconds": n["downtimeSeconds"],
                "rollbackSeconds": n["rollbackSeconds"],
                "shiftSeconds": n["shiftSeconds"],
            }
            for d, n in numbers
        ],
        "rollbackSeconds": {
            "p50": quantile(50),
            "p95": quantile(95),
            "max": rollbacks[-1] if rollbacks else None,
        },
        "meanShiftSeconds": round(statistics.fmean(durations), 3) if durations else None,
    }
