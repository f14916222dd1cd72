"""The deployment's plot: the target color's share of traffic over time, each step labelled
with its weights, pauses and promotes marked, the guard failure and the restore annotated with
what failed and how long the restore took, and the guards' verdicts below."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a screen: before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
from cutover_gates.contract import Status, share

from cutover.deployment import Deployment
from cutover.timeline import EventType
from cutover.weights import format_weights

FAIL_COLOR = "#d62728"
OK_COLOR = "#2ca02c"


def _unit(seconds: float) -> tuple[float, str]:
    """A divisor and a label for the x axis: seconds, minutes or hours."""
    if seconds >= 2 * 3600:
        return 3600.0, "hours since start"
    if seconds >= 120:
        return 60.0, "minutes since start"
    return 1.0, "seconds since start"


def figure_of(deployment: Deployment) -> Any:
    """The matplotlib Figure (tests read its artists; `plot` saves it)."""
    start, target = deployment.started_at, deployment.target
    end = max((deployment.finished_at or start) - start, 0.001)
    scale, unit = _unit(end)
    first = deployment.start_weights
    points: list[tuple[float, float]] = [(0.0, 100 * share(first[0], target))] if first else []
    figure, (ax, guards) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
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
        elif event.type == EventType.RESTORED and first:
            points.append((event.t - start, 100 * share(first[0], target)))
    failure, timings = deployment.failure, deployment.timings
    if failure is not None and timings.detected_at is not None:
        x = (timings.detected_at - start) / scale
        ax.axvline(x, color=FAIL_COLOR, linestyle="--", label=f"{failure.reason}")
        ax.annotate(
            textwrap.fill(f"{failure.reason}: {failure.detail}", 60, max_lines=4, placeholder=" …"),
            (x, 50),
            textcoords="offset points",
            xytext=(-6, 0),
            ha="right",
            fontsize=8,
            color=FAIL_COLOR,
        )
    if timings.rollback_seconds is not None and timings.restored_at is not None:
        x = (timings.restored_at - start) / scale
        ax.axvline(x, color="#17becf", linestyle="--", label="restored")
        ax.annotate(
            f"restored in {timings.rollback_seconds:.3f}s"
            + ("" if timings.restore_verified else " (not confirmed served)"),
            (x, 20),
            textcoords="offset points",
            xytext=(6, 0),
            fontsize=8,
        )
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
    ax.set_ylabel(f"% traffic to {target}")
    ax.set_ylim(-5, 110)
    ax.set_title(f"Deployment {deployment.id}: {deployment.status}")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry per kind of mark
    ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)
    samples = deployment.samples
    failing = [any(v == "fail" for v in s.guards.values()) for s in samples]
    guards.scatter(
        [(s.t - start) / scale for s in samples],
        [0 if f else 1 for f in failing],
        c=[FAIL_COLOR if f else OK_COLOR for f in failing],
        s=12,
    )
    guards.set_yticks([0, 1], ["fail", "ok"])
    guards.set_xlabel(unit)
    guards.set_ylabel("guards")
    figure.tight_layout()
    return figure


def plot(deployment: Deployment, path: Path) -> Path:
    """Save the deployment's plot as a PNG at `path`."""
    figure = figure_of(deployment)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def kpi_plot(data: dict[str, Any], path: Path) -> Path:
    """Per deployment over time: downtime and rollback time, with each outcome marked."""
    rows = data["perDeployment"]
    labels = [r["deployment"][:15] for r in rows]
    figure, (down, back) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    places = list(range(len(rows)))
    downtimes = [r["downtimeSeconds"] for r in rows]
    succeeded = [r["ending"] == Status.SUCCEEDED for r in rows]
    down.bar(places, downtimes, color=[OK_COLOR if s else FAIL_COLOR for s in succeeded])
    outcomes = ((True, str(Status.SUCCEEDED), OK_COLOR), (False, "given back", FAIL_COLOR))
    for ok, label, color in outcomes:
        marked = [i for i, s in enumerate(succeeded) if s == ok]
        if marked:  # each outcome shows even where the downtime is 0 s
            down.plot(marked, [0] * len(marked), marker="o", linestyle="none", color=color,
                      label=label, clip_on=False)  # fmt: skip
    down.set_ylim(0, max([1.0, *downtimes]) * 1.1)
    down.legend(loc="upper left", fontsize=8)
    down.set_ylabel("downtime (s)")
    rate = data["successRate"]
    title = f"{data['succeeded']}/{data['deployments']} succeeded"
    down.set_title(title + (f" ({rate:.0%})" if rate is not None else ""))
    rolled = [(i, r["rollbackSeconds"]) for i, r in enumerate(rows)
              if r["rollbackSeconds"] is not None]  # fmt: skip
    if rolled:  # a deployment that gave nothing back has no rollback time, not one of 0 s
        back.plot(*zip(*rolled, strict=True), marker="o", linestyle="none", color="#17becf")
    back.set_xticks(places, labels)
    back.set_ylabel("rollback (s)")
    back.set_xlabel("deployment")
    back.tick_params(axis="x", labelrotation=45)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
