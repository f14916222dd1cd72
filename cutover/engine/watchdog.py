"""The watchdog: when the process driving a shift is gone, the stack itself gives traffic back.

One pass reads the journal's active deployments (in progress or paused). A deployment whose
lease is still live is never touched: its holder is watching it (past its --deadline, the
watchdog asks it to abort, as `cutover abort` would). A deployment whose holder stopped
renewing is taken over with the same conditional write every holder uses, so two passes, or a
pass and an operator, never both act, and restored exactly as `cutover rollback` restores it
(`takeover.TakeOver`, writing back through `restore.restore_snapshot`: the color it goes back
to scaled up first where it was scaled down, and the restore re-verified once a late write of
the old holder can no longer land).

Deployments that share no listener are restored at once, the oldest deadline first; those
that share one, newest first (the last snapshot written back is what the oldest found). Each
deployment's events and metrics go to its own stacks only. A pass that would run out of time
(the Lambda's timeout) leaves what it cannot finish, and says so.

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

from cutover_gates.contract import Color

from cutover.clock import Clock
from cutover.deployment import Deployment
from cutover.engine.control import ABORT
from cutover.engine.restore import write_seconds
from cutover.engine.takeover import Restoring, TakeOver, take_over
from cutover.errors import LockHeld
from cutover.fleet import ensure_full_capacity
from cutover.journal import Journal
from cutover.journal.lease import LeaseLost, LeaseState
from cutover.notifier import Notifier
from cutover.service import Service
from cutover.timeline import Failure
from cutover.weights import format_weights

# How long a color scaled down may take to be ready again before a watchdog restore gives up.
SCALE_TIMEOUT_SECONDS = 240.0
# Restores run at once, at most this many (each a few calls; AWS clients pool 64 connections).
WORKERS = 32


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
    reason = f"watchdog: holder {holder.where} stopped renewing at {_when(renewed)}"
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
class Pass:
    """One watchdog pass over a journal, for the stacks it was given."""

    services: list[Service]
    journal: Journal
    notifier_for: Callable[[list[Service]], Notifier]
    log: Callable[[str], None]
    clock: Clock
    time_left: Callable[[], float] | None = None  # seconds the pass may still take

    def run(self) -> list[Finding]:
        by_key = {s.key: s for s in self.services}
        findings: list[Finding] = []
        dead: list[tuple[Deployment, list[LeaseState]]] = []
        for deployment in self.journal.active():
            if not set(deployment.listeners) <= set(by_key):
                findings.append(Finding(deployment.id, "left",
                                        "it moves listeners or routes this stack does not have"))  # fmt: skip
                continue
            leases = [s for s in (self.journal.lease_state(k) for k in deployment.listeners) if s]
            now = self.clock.now()
            if any(s.live(now) for s in leases):
                findings.append(self._alive(deployment, now))
            else:
                dead.append((deployment, leases))
        findings += self._restore_all(dead, by_key)
        return findings

    def _alive(self, deployment: Deployment, now: float) -> Finding:
        if (
            past_deadline(deployment, now)
            and self.journal.requested(deployment.scope, deployment.id) != ABORT
        ):
            self.journal.request(deployment.scope, deployment.id, ABORT)
            return Finding(deployment.id, "asked",
                           "past its deadline: abort requested of its live holder")  # fmt: skip
        return Finding(deployment.id, "left", "its holder is alive and renewing its lease")

    def _restore_all(
        self, dead: list[tuple[Deployment, list[LeaseState]]], by_key: dict[str, Service]
    ) -> list[Finding]:
        """Deployments that share a listener, one after another (newest first); the others
        at once (the oldest deadline first): every restore written, then one wait for late
        writes of the old holders, then every re-verify and journal at once."""
        groups: list[list[tuple[Deployment, list[LeaseState]]]] = []
        for entry in sorted(dead, key=lambda e: e[0].id, reverse=True):
            keys = set(entry[0].listeners)
            joined = [g for g in groups if keys & {k for d, _ in g for k in d.listeners}]
            for g in joined:
                groups.remove(g)
            groups.append([e for g in joined for e in g] + [entry])
        groups.sort(key=lambda g: min(deadline_of(d) for d, _ in g))
        if not groups:
            return []
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(groups))) as pool:
            begun = list(pool.map(lambda g: self._group(g, by_key), groups))
            started = [r for found in begun for r in found if isinstance(r, _Begun)]
            waiting = [b for b in started if b.restoring.reverify]
            if waiting:  # one wait for them all: the longest write any old holder may have
                max(
                    waiting, key=lambda b: write_seconds(b.taker.services)
                ).taker.wait_for_late_writes()
            finished = dict(pool.map(lambda b: (b.restoring.deployment.id, b.finish()), started))
        return [
            finished[r.restoring.deployment.id] if isinstance(r, _Begun) else r
            for found in begun
            for r in found
        ]

    def _group(
        self, group: list[tuple[Deployment, list[LeaseState]]], by_key: dict[str, Service]
    ) -> list[Finding | _Begun]:
        """A lone deployment is begun (finished with the others); several on one listener
        are given back one after another, each whole."""
        if len(group) == 1:
            return [self._begin(*group[0], by_key)]
        found: list[Finding | _Begun] = []
        for deployment, leases in group:
            begun = self._begin(deployment, leases, by_key)
            found.append(begun.finish(waited=False) if isinstance(begun, _Begun) else begun)
        return found

    def _begin(
        self, deployment: Deployment, leases: list[LeaseState], by_key: dict[str, Service]
    ) -> Finding | _Begun:
        services = [by_key[k] for k in deployment.listeners]
        needed = 2 * write_seconds(services) + deployment.options.verify_timeout
        if self.time_left is not None and self.time_left() < needed:
            return Finding(deployment.id, "left",
                           f"not enough time left in this pass ({self.time_left():.0f}s of the "
                           f"{needed:.0f}s a restore may take); the next pass restores it")  # fmt: skip
        reason = why(deployment, leases, self.clock.now())

        def capacity(color: Color) -> None:
            for s in services:
                ensure_full_capacity(s.outputs, s.fleet, color, SCALE_TIMEOUT_SECONDS, self.log)

        taker = take_over(services, self.journal, self.notifier_for(services), self.log,
                          capacity, self.clock)  # fmt: skip
        try:
            begun = taker.begin(deployment, Failure("watchdog", reason), leases)
            return _Begun(taker, begun, reason)
        except (LockHeld, LeaseLost):
            return Finding(deployment.id, "left", "someone else took it over first")
        except Exception as e:  # noqa: BLE001 - reported, and the pass fails after the others
            return Finding(deployment.id, "failed", f"{type(e).__name__}: {e}")


@dataclass
class _Begun:
    """A restore written by this pass, to be finished with the others."""

    taker: TakeOver
    restoring: Restoring
    reason: str

    def finish(self, waited: bool = True) -> Finding:
        deployment = self.restoring.deployment
        try:
            done = self.taker.finish(self.restoring, waited=waited)
        except (LockHeld, LeaseLost):
            return Finding(deployment.id, "left", "someone else took it over first")
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
) -> list[Finding]:
    """One pass over the journal's active deployments; what it did about each."""
    return Pass(services, journal, notifier_for, log, clock or Clock(), time_left).run()


def notifier_for_services(log: Callable[[str], None]) -> Callable[[list[Service]], Notifier]:
    """Each deployment's events and metrics to its own stacks only."""
    return lambda services: Notifier([s.outputs for s in services], log)


# Seconds of the Lambda's time a pass keeps in hand for writing its findings.
LAMBDA_MARGIN_SECONDS = 10.0


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point: one pass over this stack (outputs in $CUTOVER_OUTPUTS).

    Raises when a restore failed, so the function's Errors alarm tells the stack's topic.
    """
    from cutover.journal import open_journal
    from cutover.journal.items import skipped_line
    from cutover.outputs import StackOutputs
    from cutover.service import services_of

    outputs = StackOutputs(json.loads(os.environ["CUTOVER_OUTPUTS"]), "CUTOVER_OUTPUTS")
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
