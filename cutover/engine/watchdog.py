"""The watchdog: when the process driving a shift is gone, the stack itself gives traffic back.

One pass reads the journal's active deployments (in progress or paused). A deployment whose
lease is still live is never touched: its holder is watching it (past its --deadline, the
watchdog asks it to abort, as `cutover abort` would). A deployment whose holder stopped
renewing is taken over with the same conditional write every holder uses, so two passes, or a
pass and an operator, never both act, and restored exactly as `cutover rollback` restores it
(`takeover.TakeOver`: the color it goes back to scaled up first where it was scaled down, and
the restore re-verified once a late write of the old holder can no longer land), but only
for the newest owner of its listeners: one a newer deployment superseded before it moved
traffic is closed without a write. A release train is given back whole by the watchdog of
any journal that holds it, its other services rebuilt from the outputs it journaled.

Deployments are restored at once, the oldest deadline first. Each deployment's events and
metrics go to its own stacks only. A pass that would run out of time (the Lambda's timeout)
leaves what it cannot finish, and says so; a scale-up waits only as long as the pass has.

It runs as a scheduled Lambda function on AWS stacks (`handler`, packaged by the program with
only boto3 needed), as a CronJob on Gateway stacks, or as `cutover watchdog --once`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cutover_gates.contract import COLORS, Color, Status

from cutover.clock import Clock
from cutover.deployment import Deployment
from cutover.engine.requests import ABORT, Request
from cutover.engine.session import Session, write_seconds
from cutover.engine.takeover import Restoring, TakeOver
from cutover.errors import LockHeld
from cutover.fleet import ensure_full_capacity
from cutover.journal import Journal, open_journal
from cutover.journal.items import skipped_line
from cutover.journal.lease import LeaseLost, LeaseState
from cutover.journal.owner import Owner, Superseded, newer_owner
from cutover.notifier import Notifier
from cutover.outputs import parse_outputs
from cutover.service import (
    Rebuild,
    Service,
    rebuild_services,
    services_of,
    services_of_deployment,
)
from cutover.timeline import EventType, Failure
from cutover.weights import format_weights

# How long a color scaled down may take to be ready again before a watchdog restore gives up.
SCALE_TIMEOUT_SECONDS = 240.0
# Restores run at once, at most this many (each a few calls; AWS clients pool 64 connections).
WORKERS = 32


@dataclass(frozen=True)
class Finding:
    """What one pass did about one deployment: restored, asked (to abort), closed (never
    moved traffic, superseded), left, or failed."""

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
    reason = f"holder {holder.where} stopped renewing at {_when(renewed)}"
    if past_deadline(deployment, now):
        reason += "; past its deadline"
    return reason


def past_deadline(deployment: Deployment, now: float) -> bool:
    deadline = deployment.options.deadline
    return deadline is not None and now > deployment.started_at + deadline


def deadline_of(deployment: Deployment) -> float:
    """When the deployment should have ended: its --deadline, else its start."""
    return deployment.started_at + (deployment.options.deadline or 0.0)


@dataclass
class Dead:
    """A deployment whose holder stopped renewing, with its services and leases as read."""

    deployment: Deployment
    services: list[Service]
    leases: list[LeaseState]


@dataclass
class Pass:
    """One watchdog pass over a journal, for the stacks it was given."""

    services: list[Service]
    journal: Journal
    notifier_for: Callable[[list[Service]], Notifier]
    log: Callable[[str], None]
    clock: Clock
    time_left: Callable[[], float] | None = None  # seconds the pass may still take
    rebuild: Rebuild = rebuild_services

    def run(self) -> list[Finding]:
        findings: list[Finding] = []
        dead: list[Dead] = []
        for deployment in self.journal.active():
            try:
                found = self._look(deployment)
            except Exception as e:  # noqa: BLE001 - one deployment must not stop the pass
                found = Finding(deployment.id, "failed", f"{type(e).__name__}: {e}")
            if isinstance(found, Dead):
                dead.append(found)
            else:
                findings.append(found)
        return findings + self._restore_all(dead)

    def _look(self, deployment: Deployment) -> Finding | Dead:
        services = services_of_deployment(deployment, self.services, self.rebuild)
        if services is None:
            return Finding(deployment.id, "left", "it moves listeners or routes this stack does "
                           "not have, and journaled no outputs for them (an earlier release)")  # fmt: skip
        leases = [s for s in (self.journal.lease_state(k) for k in deployment.listeners) if s]
        now = self.clock.now()
        if any(s.live(now) for s in leases):
            return self._alive(deployment, now)
        newer = newer_owner(self.journal, deployment)
        if newer is not None:
            return self._close_superseded(deployment, *newer)
        return Dead(deployment, services, leases)

    def _alive(self, deployment: Deployment, now: float) -> Finding:
        asked = Request.parse(self.journal.requested(deployment.scope, deployment.id))
        if past_deadline(deployment, now) and asked != ABORT:
            self.journal.request(deployment.scope, deployment.id, ABORT.text())
            return Finding(deployment.id, "asked",
                           "past its deadline: abort requested of its live holder")  # fmt: skip
        return Finding(deployment.id, "left", "its holder is alive and renewing its lease")

    def _close_superseded(self, deployment: Deployment, key: str, newer: Owner) -> Finding:
        """A newer deployment took `key` since: this one's snapshot is never written. One
        that never moved traffic is closed; one that did (journaled before epochs) is left
        for an operator, said."""
        said = f"deployment {newer.deployment} took {key} since"
        if deployment.moved_traffic:
            return Finding(deployment.id, "left", f"{said}; its snapshot is not restored over it")
        try:
            self.journal.claim(deployment)
        except LeaseLost:
            return Finding(deployment.id, "left", "someone else took it over first")
        deployment.status = Status.ROLLED_BACK
        deployment.failure = Failure("superseded", f"{said} before it moved traffic")
        deployment.finished_at = self.clock.now()
        deployment.event(EventType.FINISHED, self.clock.now(), status=str(deployment.status))
        self.journal.save(deployment)
        return Finding(deployment.id, "closed", f"{said}, before it moved traffic")

    def _restore_all(self, dead: list[Dead]) -> list[Finding]:
        """Every restore written at once (the oldest deadline first), then one wait for late
        writes of the old holders, then every re-verify and journal at once."""
        if not dead:
            return []
        dead.sort(key=lambda x: deadline_of(x.deployment))
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(dead))) as pool:
            begun = list(pool.map(self._begin, dead))
            started = [b for b in begun if isinstance(b, _Begun)]
            waiting = [b for b in started if b.restoring.reverify]
            if waiting:  # one wait for them all: the longest write any old holder may have
                max(
                    waiting, key=lambda b: b.taker.session.write_seconds
                ).taker.wait_for_late_writes()
            finished = list(pool.map(lambda b: b.finish() if isinstance(b, _Begun) else b, begun))
        return finished

    def _begin(self, dead: Dead) -> Finding | _Begun:
        deployment, services = dead.deployment, dead.services
        needed = 2 * write_seconds(services) + deployment.options.verify_timeout
        left = None if self.time_left is None else self.time_left()
        if left is not None and left < needed:
            return Finding(deployment.id, "left",
                           f"not enough time left in this pass ({left:.0f}s of the "
                           f"{needed:.0f}s a restore may take); the next pass restores it")  # fmt: skip
        reason = why(deployment, dead.leases, self.clock.now())
        # a scale-up waits only as long as this pass has; a pass cut short after its claim
        # leaves the deployment for the next (the claim's generation is what loads read)
        scale = SCALE_TIMEOUT_SECONDS if left is None else min(SCALE_TIMEOUT_SECONDS, left - needed)

        def capacity(color: Color) -> None:
            for s in services:
                ensure_full_capacity(s.outputs, s.fleet, color, scale, self.log, clock=self.clock)

        session = Session.of(services, self.journal, self.notifier_for(services), self.log,
                             self.clock, extra_workers=len(COLORS))  # fmt: skip
        taker = TakeOver(session, capacity)
        try:
            begun = taker.begin(deployment, Failure("watchdog", reason), dead.leases)
            return _Begun(taker, begun, reason)
        except (LockHeld, LeaseLost) as e:
            return Finding(deployment.id, "left", _not_ours(e))
        except Exception as e:  # noqa: BLE001 - reported, and the pass fails after the others
            return Finding(deployment.id, "failed", f"{type(e).__name__}: {e}")


def _not_ours(error: Exception) -> str:
    return str(error) if isinstance(error, Superseded) else "someone else took it over first"


@dataclass
class _Begun:
    """A restore written by this pass, to be finished with the others."""

    taker: TakeOver
    restoring: Restoring
    reason: str

    def finish(self) -> Finding:
        deployment = self.restoring.deployment
        try:
            done = self.taker.finish(self.restoring, waited=True)
        except (LockHeld, LeaseLost) as e:
            return Finding(deployment.id, "left", _not_ours(e))
        except Exception as e:  # noqa: BLE001 - reported, and the pass fails after the others
            return Finding(deployment.id, "failed", f"{type(e).__name__}: {e}")
        start = done.start_weights
        split = format_weights(start[0]) if start else "the weights it found"
        if not done.timings.restore_verified:
            return Finding(done.id, "failed",
                           f"restored weights written ({split}); not yet confirmed served")  # fmt: skip
        return Finding(done.id, "restored", f"{split} ({self.reason})")


def watch_once(
    services: list[Service],
    journal: Journal,
    notifier_for: Callable[[list[Service]], Notifier],
    log: Callable[[str], None],
    clock: Clock | None = None,
    time_left: Callable[[], float] | None = None,
    rebuild: Rebuild = rebuild_services,
) -> list[Finding]:
    """One pass over the journal's active deployments; what it did about each."""
    return Pass(services, journal, notifier_for, log, clock or Clock(), time_left, rebuild).run()


def notifier_for_services(log: Callable[[str], None]) -> Callable[[list[Service]], Notifier]:
    """Each deployment's events and metrics to its own stacks only."""
    return lambda services: Notifier([s.outputs for s in services], log)


# Seconds of the Lambda's time a pass keeps in hand for writing its findings.
LAMBDA_MARGIN_SECONDS = 10.0


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point: one pass over this stack (outputs in $CUTOVER_OUTPUTS).

    Raises when a restore failed, so the function's Errors alarm tells the stack's topic.
    """
    outputs = parse_outputs(json.loads(os.environ["CUTOVER_OUTPUTS"]), "CUTOVER_OUTPUTS")
    journal = open_journal("stack", outputs.journal_table, None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left = (lambda: remaining() / 1000 - LAMBDA_MARGIN_SECONDS) if remaining else None
    findings = watch_once(
        services_of([outputs]), journal, notifier_for_services(print), print, time_left=time_left
    )
    for finding in findings:
        print(finding.line())
    skipped = skipped_line(journal.skipped)
    if skipped:
        print(skipped)
    failed = [f for f in findings if f.action == "failed"]
    if failed:
        raise RuntimeError("; ".join(f.line() for f in failed))
    return {"findings": [f.__dict__ for f in findings], "skipped": len(journal.skipped)}
