"""What people see as pictures: a deployment's plot and the KPIs' plot, each panel answering one
question, with a legend and names.

A deployment: how much traffic the target color had over time (each step labelled with its
weights, pauses and promotes marked, the failure as a line naming it and the restore as a
point where the weights were served again, since the two are often a fraction of a second
apart), and below, each guard on its own row: which one failed, and when.

The KPIs, per deployment in time order (labelled by full id): how it ended and how long it
took; how long users lost service (and, beside it, the seconds with requests failing at the
load balancer, where the downtime guard counted them); how long giving the traffic back took.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a screen: before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
from cutover_gates.contract import Status, share
from matplotlib.patches import Patch

from cutover.deployment import Deployment
from cutover.summary import Ending, Summary
from cutover.timeline import EventType
from cutover.weights import format_weights

FAIL_COLOR = "#d62728"
OK_COLOR = "#2ca02c"
RESTORE_COLOR = "#17becf"
OPERATOR_COLOR = "#ff7f0e"
OTHER_COLOR = "#7f7f7f"
# A guard verdict's color in the guards' panel (any other state: OTHER_COLOR).
STATE_COLORS = {"ok": OK_COLOR, "fail": FAIL_COLOR, "inconclusive": OTHER_COLOR}
ENDING_COLORS = {
    Ending.SUCCEEDED: OK_COLOR,
    Ending.ROLLED_BACK: FAIL_COLOR,
    Ending.ROLLED_BACK_AFTER_SUCCESS: OPERATOR_COLOR,
}
ENDING_LABELS = {
    Ending.SUCCEEDED: str(Ending.SUCCEEDED),
    Ending.ROLLED_BACK: "rolled back before it succeeded",
    Ending.ROLLED_BACK_AFTER_SUCCESS: "rolled back by an operator after it succeeded",
}
MAX_LABELS = 24  # deployment ids on the KPIs' x axis; past it, every n-th
MAX_CAUSES = 20  # deployments whose bars are each named by their cause; past it, the legend
# Legends sit right of their panels, where no line, bar or point can be under them.
BESIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8}


def _unit(seconds: float) -> tuple[float, str]:
    """A divisor and a unit for a span of time: seconds, minutes or hours."""
    if seconds >= 2 * 3600:
        return 3600.0, "hours"
    if seconds >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _traffic(ax: Any, deployment: Deployment, scale: float, end: float) -> None:
    """The target's share of traffic over time, with its steps, pauses and promotes."""
    start, target = deployment.started_at, deployment.target
    first = deployment.start_weights
    points: list[tuple[float, float]] = [(0.0, 100 * share(first[0], target))] if first else []
    for event in deployment.events:
        x = (event.t - start) / scale
        if event.type == EventType.STEP and event.weights is not None:
            weights = event.weights
            points.append((event.t - start, 100 * share(weights, target)))
            ax.annotate(
                f"step {(event.index or 0) + 1}: {format_weights(weights)}",
                (x, 100 * share(weights, target)),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
            )
        elif event.type == EventType.PAUSED:
            ax.axvline(x, color="#ff7f0e", linestyle=":", label=str(EventType.PAUSED))
        elif event.type == EventType.PROMOTED:
            ax.axvline(x, color="#9467bd", linestyle=":", label=str(EventType.PROMOTED))
        elif event.type == EventType.FINISHED and event.detail.get("status") == Status.SUCCEEDED:
            # shown where an operator rolled the deployment back after it succeeded
            ax.axvline(x, color=OK_COLOR, linestyle=":", label=str(Status.SUCCEEDED))
        elif event.type == EventType.RESTORED and first:
            points.append((event.t - start, 100 * share(first[0], target)))
    xs: list[float] = []
    ys: list[float] = []
    for i, (t, y) in enumerate(points):
        if i:
            xs.append(t / scale)
            ys.append(points[i - 1][1])
        xs.append(t / scale)
        ys.append(y)
    xs.append(max(end / scale, xs[-1] if xs else 0))
    ys.append(ys[-1] if ys else 0)
    ax.plot(xs, ys, color=OK_COLOR if target == "green" else "#1f77b4", linewidth=2,
            label=f"% of traffic to {target}")  # fmt: skip


def _failure_and_restore(ax: Any, guards: Any, deployment: Deployment, scale: float) -> None:
    """The failure as a line across both panels, named; the restore as a point on the traffic
    line where the weights it found were served again, with how long that took."""
    start, failure, timings = deployment.started_at, deployment.failure, deployment.timings
    if failure is not None and timings.detected_at is not None:
        x = (timings.detected_at - start) / scale
        ax.axvline(x, color=FAIL_COLOR, linestyle="--", label=failure.reason)
        guards.axvline(x, color=FAIL_COLOR, linestyle="--", zorder=0)
        ax.annotate(
            textwrap.fill(str(failure), 60, max_lines=4, placeholder=" …"),
            (x, 50),
            textcoords="offset points",
            xytext=(-6, 0),
            ha="right",
            fontsize=8,
            color=FAIL_COLOR,
        )
    first = deployment.start_weights
    if timings.rollback_seconds is not None and timings.restored_at is not None and first:
        x = (timings.restored_at - start) / scale
        y = 100 * share(first[0], deployment.target)
        ax.plot([x], [y], marker="D", markersize=8, linestyle="none", color=RESTORE_COLOR,
                label="restored (weights served again)", zorder=5)  # fmt: skip
        ax.annotate(
            f"restored in {timings.rollback_seconds:.3f}s"
            + ("" if timings.restore_verified else " (not confirmed served)"),
            (x, y),
            textcoords="offset points",
            xytext=(-10, 22),
            ha="right",
            fontsize=8,
            color=RESTORE_COLOR,
        )


def _guards(ax: Any, deployment: Deployment, scale: float) -> None:
    """Each guard on a row of its own, each poll a point in the color of its verdict."""
    names: list[str] = []
    for sample in deployment.samples:
        names += [n for n in sample.guards if n not in names]
    start = deployment.started_at
    seen: set[str] = set()
    for row, name in enumerate(names):
        for state in dict.fromkeys(s.guards.get(name, "") for s in deployment.samples):
            times = [
                (s.t - start) / scale for s in deployment.samples if s.guards.get(name) == state
            ]
            if not state or not times:
                continue
            ax.scatter(times, [row] * len(times), s=14, color=STATE_COLORS.get(state, OTHER_COLOR),
                       label=None if state in seen else state)  # fmt: skip
            seen.add(state)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(max(len(names), 1) - 0.4, -0.6)  # the first guard polled on top
    ax.set_ylabel("guards")
    if seen:
        ax.legend(title="verdict", title_fontsize=8, **BESIDE)


def figure_of(deployment: Deployment) -> Any:
    """The deployment's matplotlib Figure (tests read its artists; `plot` saves it)."""
    end = max((deployment.finished_at or deployment.started_at) - deployment.started_at, 0.001)
    scale, unit = _unit(end)
    names = {n for s in deployment.samples for n in s.guards}
    figure, (ax, guards) = plt.subplots(
        2, 1, figsize=(10, 5.5 + 0.25 * len(names)), sharex=True,
        gridspec_kw={"height_ratios": [3, 1 + 0.3 * len(names)]},
    )  # fmt: skip
    _traffic(ax, deployment, scale, end)
    _failure_and_restore(ax, guards, deployment, scale)
    ax.set_ylabel(f"% traffic to {deployment.target}")
    ax.set_ylim(-5, 110)
    after = " after it succeeded" if Summary.of(deployment).rolled_back_after_success else ""
    ax.set_title(f"Deployment {deployment.id}: {deployment.status}{after}")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry per kind of mark
    ax.legend(unique.values(), unique.keys(), **BESIDE)
    _guards(guards, deployment, scale)
    guards.set_xlabel(f"{unit} since start")
    figure.tight_layout()
    return figure


def plot(deployment: Deployment, path: Path) -> Path:
    """Save the deployment's plot as a PNG at `path`."""
    figure = figure_of(deployment)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _endings(ax: Any, rows: list[dict[str, Any]], values: list[float]) -> None:
    """Bars of `values`, one per deployment, in the color of how it ended, with a legend
    entry for each ending shown (the rolled back ones' with their causes, counted) and, while
    there is room, each rolled back bar named by its cause."""
    colors = [ENDING_COLORS.get(Ending(r["ending"]), OTHER_COLOR) for r in rows]
    ax.bar(range(len(rows)), values, color=colors)
    failed = [(i, r) for i, r in enumerate(rows) if r["ending"] == Ending.ROLLED_BACK]
    causes = Counter(r["cause"] or "unknown" for _, r in failed)
    labels = dict(ENDING_LABELS)
    labels[Ending.ROLLED_BACK] += (
        "\n(" + ", ".join(f"{c} {n}" for c, n in sorted(causes.items())) + ")"
    )
    shown = [e for e in ENDING_COLORS if any(r["ending"] == e for r in rows)]
    if shown:
        handles = [Patch(color=ENDING_COLORS[e], label=labels[e]) for e in shown]
        ax.legend(handles=handles, **BESIDE)
    if len(rows) <= MAX_CAUSES:
        for i, r in failed:
            ax.annotate(r["cause"] or "unknown", (i, values[i]), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=7, color=FAIL_COLOR)  # fmt: skip


def _said_when_none(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9,
            color=OTHER_COLOR)  # fmt: skip


def kpi_figure(data: dict[str, Any]) -> Any:
    """The KPIs' matplotlib Figure, per deployment in time order (`kpi_plot` saves it)."""
    rows = data["perDeployment"]
    places = list(range(len(rows)))
    figure, (ended, down, back) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    # how each ended, and how long it took
    scale, unit = _unit(max([r["shiftSeconds"] for r in rows], default=0.0))
    _endings(ended, rows, [r["shiftSeconds"] / scale for r in rows])
    rate, failures = data["successRate"], data["changeFailureRate"]
    figure.suptitle(
        f"{data['succeeded']} of {data['deployments']} deployments succeeded"
        + (f" ({rate:.0%}); change failure rate {failures:.0%}" if rate is not None else "")
    )
    ended.set_title("How each deployment ended, and how long it took", fontsize=10)
    ended.set_ylabel(f"duration ({unit})")
    ended.set_ylim(0, max([r["shiftSeconds"] / scale for r in rows], default=1.0) * 1.2 or 1.0)
    # how long users lost service: without a healthy target or a probe, and (where the
    # downtime guard counted them) with requests failing at the load balancer, side by side
    downtimes = [r["downtimeSeconds"] for r in rows]
    failing = [r.get("failedRequestSeconds") or 0.0 for r in rows]
    label = "no healthy target, or a probe failing"
    if any(failing):
        down.bar([x - 0.2 for x in places], downtimes, width=0.4, color=FAIL_COLOR, label=label)
        down.bar([x + 0.2 for x in places], failing, width=0.4, color=OPERATOR_COLOR,
                 label="requests failing at the load balancer or Gateway")  # fmt: skip
    else:
        down.bar(places, downtimes, color=FAIL_COLOR, label=label)
    down.set_title("How long users lost service", fontsize=10)
    down.set_ylabel("downtime (s)")
    down.set_ylim(0, max([1.0, *downtimes, *failing]) * 1.15)
    if any(downtimes) or any(failing):
        down.legend(**BESIDE)
    else:
        _said_when_none(down, f"no downtime in any of the {len(rows)} deployments")
    # how long giving the traffic back took
    back.set_title("How long giving the traffic back took (failure seen to restored, served)",
                   fontsize=10)  # fmt: skip
    back.set_ylabel("rollback (s)")
    for ending in (Ending.ROLLED_BACK, Ending.ROLLED_BACK_AFTER_SUCCESS):
        found = [(i, r["rollbackSeconds"]) for i, r in enumerate(rows)
                 if r["ending"] == ending and r["rollbackSeconds"] is not None]  # fmt: skip
        if found:  # a deployment that gave nothing back has no rollback time, not one of 0 s
            back.plot(*zip(*found, strict=True), marker="o", linestyle="none",
                      color=ENDING_COLORS[ending], label=ENDING_LABELS[ending])  # fmt: skip
    if back.get_legend_handles_labels()[0]:
        back.legend(**BESIDE)
        back.set_ylim(0, max(r["rollbackSeconds"] or 0.0 for r in rows) * 1.2)
    else:
        _said_when_none(back, "no deployment gave its traffic back")
    step = max(1, -(-len(rows) // MAX_LABELS))
    back.set_xticks(places[::step], [r["deployment"] for r in rows][::step])
    back.tick_params(axis="x", labelrotation=45, labelsize=7)
    for label in back.get_xticklabels():
        label.set_horizontalalignment("right")
    back.set_xlabel("deployment (id: start time, UTC)")
    figure.tight_layout()
    return figure


def kpi_plot(data: dict[str, Any], path: Path) -> Path:
    """Save the KPIs' plot as a PNG at `path`."""
    figure = kpi_figure(data)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
