"""The watchdog: when the process driving a shift is gone, the stack itself gives traffic back.

One pass reads the journal's active deployments (in progress or paused). A deployment whose
lease is still live is never touched: its holder is watching it (past its --deadline, the
watchdog asks it to abort, as `cutover abort` would). A deployment whose holder stopped
renewing is taken over with the same conditional write every holder uses, so two passes, or a
pass and an operator, never both act, and restored exactly as `cutover rollback` restores it
(the color it goes back to is scaled up first where it was scaled down).

It runs as a scheduled Lambda function on AWS stacks (`handler`, packaged by the program with
only boto3 needed), as a CronJob on Gateway stacks, or as `cutover watchdog --once`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cutover.deployment import Deployment, Failure
from cutover.errors import CutoverError, LockHeld
from cutover.fleet import ensure_full_capacity
from cutover.journal import Journal
from cutover.journal.lease import LeaseState
from cutover.notifier import Notifier
from cutover.restore import Clock, describe
from cutover.service import Service
from cutover.shift import ABORT, Shift

# How long a color scaled down may take to be ready again before a watchdog restore gives up.
SCALE_TIMEOUT_SECONDS = 240.0


@dataclass(frozen=True)
class Finding:
    """What one pass did about one deployment: restored, asked (to abort), left, or failed."""

    deployment: str
    action: str
    detail: str

    def line(self) -> str:
        return f"{self.action:9} {self.deployment}: {self.detail}"


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def why(deployment: Deployment, leases: list[LeaseState], now: float) -> str:
    """The reason journaled for a watchdog restore."""
    if leases:
        last = max(leases, key=lambda s: s.renewed_at)
        holder, renewed = last.holder, last.renewed_at
    else:  # the lease is gone (released, or expired and deleted): when it was last heard of
        holder = deployment.holder
        heard = [e.t for e in deployment.events[-1:]] + [s.t for s in deployment.samples[-1:]]
        renewed = max(heard, default=deployment.started_at)
    who = f"{holder.get('who')} on {holder.get('host')}"
    reason = f"watchdog: holder {who} stopped renewing at {_when(renewed)}"
    if past_deadline(deployment, now):
        reason += "; past its deadline"
    return reason


def past_deadline(deployment: Deployment, now: float) -> bool:
    deadline = deployment.options.deadline
    return deadline is not None and now > deployment.started_at + deadline


def watch_once(
    services: list[Service],
    journal: Journal,
    notifier: Notifier,
    log: Callable[[str], None],
    clock: Clock | None = None,
) -> list[Finding]:
    """One pass over the journal's active deployments; what it did about each."""
    clock = clock or Clock()
    by_key = {s.key: s for s in services}
    findings = []
    # newest first: a deployment that took over a listener from a stale one is undone before
    # it, so the last snapshot written back is what the oldest found
    active = sorted(journal.active(), key=lambda d: d.id, reverse=True)
    # leases as the pass found them, before any restore of its own takes and releases them
    leases = {d.id: [s for s in (journal.lease_state(k) for k in d.listeners) if s] for d in active}
    for deployment in active:
        if not set(deployment.listeners) <= set(by_key):
            findings.append(
                Finding(
                    deployment.id, "left", "it moves listeners or routes this stack does not have"
                )
            )
            continue
        now = clock.now()
        if any(s.live(now) for s in leases[deployment.id]):
            if (
                past_deadline(deployment, now)
                and journal.requested(deployment.scope, deployment.id) != ABORT
            ):
                journal.request(deployment.scope, deployment.id, ABORT)
                findings.append(
                    Finding(
                        deployment.id,
                        "asked",
                        "past its deadline: abort requested of its live holder",
                    )
                )
            else:
                findings.append(
                    Finding(deployment.id, "left", "its holder is alive and renewing its lease")
                )
            continue
        findings.append(
            _restore(
                deployment,
                [by_key[k] for k in deployment.listeners],
                journal,
                notifier,
                log,
                clock,
                leases[deployment.id],
            )
        )
    return findings


def _restore(
    deployment: Deployment,
    services: list[Service],
    journal: Journal,
    notifier: Notifier,
    log: Callable[[str], None],
    clock: Clock,
    leases: list[LeaseState],
) -> Finding:
    reason = why(deployment, leases, clock.now())

    def capacity(color: str) -> None:
        for s in services:
            ensure_full_capacity(s.outputs, s.fleet, color, SCALE_TIMEOUT_SECONDS, log)  # type: ignore[arg-type]

    try:
        done = Shift(services, journal, notifier, log, clock).rollback(
            deployment, capacity, Failure("watchdog", reason)
        )
    except LockHeld:
        return Finding(deployment.id, "left", "someone else took its lease first")
    except (CutoverError, Exception) as e:  # noqa: BLE001 - reported, and the pass fails
        return Finding(deployment.id, "failed", f"{type(e).__name__}: {e}")
    split = describe(done.start_weights[0]) if done.start_weights else "the weights it found"
    if not done.timings.restore_verified:
        return Finding(
            done.id, "failed", f"restored weights written ({split}); not yet confirmed served"
        )
    return Finding(done.id, "restored", f"{split} ({reason})")


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point: one pass over this stack (outputs in $CUTOVER_OUTPUTS).

    Raises when a restore failed, so the function's Errors alarm tells the stack's topic.
    """
    from cutover.journal import open_journal
    from cutover.outputs import StackOutputs
    from cutover.service import services_of

    outputs = StackOutputs(json.loads(os.environ["CUTOVER_OUTPUTS"]), "CUTOVER_OUTPUTS")
    journal = open_journal("stack", outputs.journal_table, None)
    findings = watch_once(services_of([outputs]), journal, Notifier([outputs], print), print)
    for finding in findings:
        print(finding.line())
    failed = [f for f in findings if f.action == "failed"]
    if failed:
        raise RuntimeError("; ".join(f.line() for f in failed))
    return {"findings": [f.__dict__ for f in findings]}
