"""Baking under guards: the wait of a step's bake, of a pause and of the verification at 100%.

Each wait polls every guard at the shift's interval, keeps the samples, reads the control
requests (promote, abort) and watches the lease, and ends with the first failure, abort or
deadline, or with the wait being over. Functions over the running `Shift`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cutover_gates.contract import COLORS, Status

from cutover.engine.control import ABORT, PROMOTE_FULL, promote_request
from cutover.engine.guard import (
    PAUSE_PROGRESS_SECONDS,
    PROGRESS_SECONDS,
    Guard,
    Progress,
    Tally,
    Verdict,
    analysis_guard,
    guards_for,
    sample_of,
)
from cutover.engine.restore import snapshot_weights
from cutover.timeline import EventType
from cutover.weights import Weights, format_weights

if TYPE_CHECKING:
    from cutover.engine.shift import Shift


def verify(shift: Shift, deadline: float | None) -> tuple[str, str] | None:
    """Post-deployment verification: keep baking at the last step under every guard and
    the analysis (`--verify-for`) before the shift counts as succeeded."""
    d = shift.deployment
    seconds = d.options.verify_for
    if d.options.kind != "shift" or not seconds or shift.full:
        return None
    shift.record(EventType.VERIFYING, seconds=seconds)
    shift.log(f"Verifying {format_weights(d.plan[-1])} for {seconds:g}s under every guard.")
    failure = watch(shift, d.plan[-1], seconds, deadline)
    if failure is None and shift.full:  # `cutover promote --full`: said, never "verified"
        shift.log("Verification cut short by `cutover promote --full`.")
    elif failure is None:
        shift.record(EventType.VERIFIED, seconds=seconds)
    return failure


def serving_before(shift: Shift, index: int) -> Weights:
    """What is served before step `index`: the previous step, or what the shift found
    (every color that any service served)."""
    if index > 0:
        return shift.deployment.plan[index - 1]
    found = snapshot_weights(shift.services, shift.deployment)
    return {c: max(w[c] for w in found) for c in COLORS}


def pause(shift: Shift, index: int, deadline: float | None) -> tuple[str, str] | None:
    """Wait for `cutover promote` before step `index`, with every guard still running."""
    d = shift.deployment
    weights = d.plan[index]
    d.status = Status.PAUSED
    shift.record(EventType.PAUSED, before=weights, index=index)
    shift.notifier.event(d, EventType.PAUSED, f"before {format_weights(weights)}")
    shift.log(
        f"Paused before {format_weights(weights)}; guards keep watching. Run `cutover promote` "
        "to continue or `cutover abort` to give traffic back."
    )
    failure = watch(shift, serving_before(shift, index), None, deadline, pause_index=index)
    if failure is not None:
        return failure
    d.status = Status.IN_PROGRESS
    shift.record(EventType.PROMOTED, index=index, full=shift.full)
    shift.notifier.event(d, EventType.PROMOTED, f"to {format_weights(weights)}")
    return None


def watch(
    shift: Shift,
    weights: Weights,
    seconds: float | None,
    deadline: float | None,
    pause_index: int | None = None,
) -> tuple[str, str] | None:
    """Poll the guards of `weights` for `seconds` (None: until promoted); (reason, detail)
    of the first failure, abort or deadline, or None when the wait is over."""
    d, options = shift.deployment, shift.deployment.options
    analysis = analysis_guard(shift.services, options, weights, d.started_at, shift.clock.now,
                              d.phase_began(weights))  # fmt: skip
    guards = guards_for(shift.services, options, weights, analysis)
    inconclusive = Tally(options.max_inconclusive)
    started = shift.clock.monotonic()
    end = None if seconds is None else started + seconds
    # progress at most every 10 s, or every 10% of the bake, whichever is rarer
    every = max(PROGRESS_SECONDS, 0.1 * seconds) if seconds else PAUSE_PROGRESS_SECONDS
    told = started
    first = True
    view = Progress(started, seconds, shift.clock.monotonic)
    while True:
        view.verdicts = poll(shift, guards, weights, paused=pause_index is not None)
        verdicts = view.verdicts
        shift.show(view)
        now = shift.clock.monotonic()
        if now - told >= every:  # tell, and keep the journal fresh for `status --watch`
            told = now
            shift.log(str(view))
            shift.journal.save(d)
        elif first:  # the wait's first verdicts are seen at once
            shift.journal.save(d)
        first = False
        failed = [v for v in verdicts if v.state == "fail"]
        if failed:
            return "guard failed", "; ".join(f"{v.guard}: {v.detail}" for v in failed)
        too_many = inconclusive.add(verdicts)
        if too_many:
            return "guards inconclusive", too_many
        if shift.lease.lost.is_set():
            raise shift.lease.lost_error()
        command = shift.journal.requested(shift.scope, d.id)
        if command == ABORT:
            return "aborted", "cutover abort was requested"
        if command == PROMOTE_FULL or (
            pause_index is not None and command == promote_request(pause_index)
        ):
            shift.full = shift.full or command == PROMOTE_FULL
            shift.journal.request(shift.scope, d.id, "")
            return None
        if deadline is not None and shift.clock.monotonic() >= deadline:
            return "deadline", "the shift ran past its --deadline"
        if end is not None and shift.clock.monotonic() >= end:
            return None
        left = options.interval if end is None else end - shift.clock.monotonic()
        shift.clock.sleep(max(0.0, min(options.interval, left)))


def poll(shift: Shift, guards: list[Guard], weights: Weights, paused: bool) -> list[Verdict]:
    """Check every guard once and keep the sample (while paused, only when a verdict
    changed or a minute passed, so a long pause does not grow the journal)."""
    verdicts: list[Verdict] = list(shift.pool.map(lambda g: g.check(), guards))
    sample = sample_of(verdicts, weights, shift.clock.now())
    shift.deployment.add_sample(sample, sparse=paused)
    return verdicts
