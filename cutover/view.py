"""What a person sees of a deployment: its steps with their state, the served weights, the
guards' last verdicts, the lock holder and the next action. Pure: `status` renders these rows
as plain lines (CI logs, pipes) or as a live table on a terminal."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from cutover_gates.contract import Holder, Status

from cutover.deployment import Deployment
from cutover.timeline import EventType
from cutover.weights import Weights, format_weights

WIDTH = 80  # columns: the view fits a default terminal


@dataclass(frozen=True)
class StepRow:
    number: int
    weights: Weights
    state: str  # done, baking (N s left), paused before, writing, pending, rolled back


def step_rows(deployment: Deployment, now: float) -> list[StepRow]:
    rows = []
    last = next(
        (
            e
            for e in reversed(deployment.events)
            if e.type in (EventType.STEP, EventType.STEP_INTENT)
        ),
        None,
    )
    for index, weights in enumerate(deployment.plan):
        if deployment.status == Status.PAUSED:
            paused = deployment.pause_index
            state = "done" if index < paused else "paused before" if index == paused else "pending"
        elif index < deployment.step:
            state = "done"
        elif index == deployment.step and last is not None and last.type == EventType.STEP:
            if deployment.status.active:
                left = max(0.0, last.t + deployment.options.bake - now)
                state = f"baking, {left:.0f}s left" if left else "checking"
            else:
                state = "done" if deployment.status == Status.SUCCEEDED else str(deployment.status)
        elif last is not None and last.type == EventType.STEP_INTENT and index == last.index:
            state = "writing"
        else:
            state = "pending"
        rows.append(StepRow(index + 1, weights, state))
    return rows


def next_action(state: Status) -> str | None:
    return {
        Status.PAUSED: "`cutover promote` continues, `cutover abort` gives traffic back",
        Status.IN_PROGRESS: "`cutover abort` gives traffic back",
        Status.INTERRUPTED: "`cutover rollback` gives back what it found, `cutover resume` goes on",
    }.get(state)


def lines(
    deployment: Deployment,
    state: Status,
    served: dict[str, Weights],
    holder: Holder | None,
    now: float,
) -> list[str]:
    """The plain-text view, one fact a line."""
    out = [f"deployment {deployment.id}: {state} towards {deployment.target}"]
    for name, weights in served.items():
        out.append(f"  {name} serves {format_weights(weights)}")
    for row in step_rows(deployment, now):
        out.append(
            f"  step {row.number}/{len(deployment.plan)} {format_weights(row.weights)}: {row.state}"
        )
    if deployment.samples:
        guards = deployment.samples[-1].guards
        out.append("  guards: " + ", ".join(f"{g} {s}" for g, s in sorted(guards.items())))
    if holder:
        out.append(f"  lock: {holder.where} (pid {holder.pid})")
    if deployment.failure:
        out.append(f"  failure: {deployment.failure}")
    action = next_action(state)
    if action:
        out.append(f"  next: {action}")
    return [part for line in out for part in _fitted(line)]


def _fitted(line: str) -> list[str]:
    """A fact in lines of at most WIDTH columns, continued under its own indent (a word longer
    than that, an ARN or a URL, is kept whole)."""
    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return textwrap.wrap(
        line, WIDTH, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
    ) or [line]


def exit_code(state: Status) -> int:
    """What `status --watch` exits with once the deployment is over."""
    return 0 if state in (Status.SUCCEEDED, Status.DRILLED) else 1
