"""The shift state machine: step weights under guards, and give traffic back exactly.

A deployment is saved with the snapshot of every listener's routing before the first write,
with each step's intent before it is written and its result after, so `cutover rollback` (or
the watchdog) can restore the snapshot after a crash at any point. Guards run through every
bake and every pause. On a guard failure, an abort, the deadline or a signal, the snapshot is
written back first (one call per listener, concurrently) and only then journaled.

The lease, the notifier, the clock and the signal handling are handed in; this module is the
state machine only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cutover_gates.contract import COLORS, Status

from cutover.deployment import (
    Deployment,
    EventType,
    Failure,
    Options,
    Timings,
    new_deployment_id,
    scope_of,
)
from cutover.errors import DeploymentFailed
from cutover.guard import (
    PAUSE_PROGRESS_SECONDS,
    PROGRESS_SECONDS,
    Guard,
    Tally,
    Verdict,
    guards_for,
    progress,
    sample_of,
)
from cutover.interrupt import Interrupted, Interrupts, NoInterrupts
from cutover.journal import Journal
from cutover.journal.lease import Lease
from cutover.notifier import Notifier
from cutover.plan import plan_shift
from cutover.restore import (
    Clock,
    busy_workers,
    describe,
    outcome,
    restore_snapshot,
    snapshot_weights,
    wait_served,
)
from cutover.service import Service
from cutover.weights import Weights

Log = Callable[[str], None]

# Control requests a running shift reads from the journal at every poll.
ABORT = "abort"
PROMOTE_FULL = "promote-full"
ROLLBACK_COMMAND = Failure("rollback", "cutover rollback")


def promote_request(index: int) -> str:
    """The request that promotes the pause before step `index` (and no other pause)."""
    return f"promote:{index}"


class Shift:
    """One deployment over one or more services moved in lockstep."""

    def __init__(
        self,
        services: list[Service],
        journal: Journal,
        notifier: Notifier,
        log: Log,
        clock: Clock | None = None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.services = services
        self.journal = journal
        self.notifier = notifier
        self.log = log
        self.clock = clock or Clock()
        self.interrupts = interrupts or NoInterrupts()
        self.keys = [s.key for s in services]
        self.scope = scope_of(self.keys)
        self.lease = Lease(journal, self.keys, log)
        self.pool = ThreadPoolExecutor(max_workers=busy_workers(services))
        self._deployment: Deployment | None = None
        self.full = False  # `cutover promote --full`: no more pauses or bakes

    @property
    def deployment(self) -> Deployment:
        assert self._deployment is not None, "no deployment started, resumed or loaded"
        return self._deployment

    def record(self, kind: str, **detail: object) -> None:
        self.deployment.event(kind, self.clock.now(), **detail)
        self.journal.save(self.deployment)

    # -- starting ------------------------------------------------------------------------

    def start(self, options: Options) -> Deployment:
        """Lock, snapshot and journal a new deployment (nothing written to a listener yet)."""
        deployment_id = new_deployment_id(self.clock.now())
        holder = self.lease.acquire(deployment_id)
        try:
            snapshots = list(self.pool.map(lambda s: s.router.snapshot(), self.services))
            start = [
                s.router.weights_of(snap) for s, snap in zip(self.services, snapshots, strict=True)
            ]
            lowest = min(start, key=lambda w: w[options.target] / (sum(w.values()) or 1))
            self._deployment = Deployment(
                id=deployment_id,
                scope=self.scope,
                listeners=self.keys,
                services=[s.outputs.name for s in self.services],
                stacks=sorted({s.outputs.stack for s in self.services}),
                releases={s.outputs.name: s.outputs.releases for s in self.services},
                options=options,
                snapshot=dict(zip(self.keys, snapshots, strict=True)),
                plan=plan_shift(lowest, options.target, options.steps),
                holder=holder,
                started_at=self.clock.now(),
                endpoint=os.environ.get("AWS_ENDPOINT_URL"),
            )
            self.record(EventType.STARTED, weights=start)
        except BaseException:
            self.lease.release()
            raise
        return self.deployment

    def resume(self, deployment: Deployment) -> None:
        """Take over an interrupted deployment (its process is gone)."""
        self._deployment = deployment
        deployment.holder = self.lease.acquire(deployment.id)
        self.record(EventType.RESUMED)

    # -- running ---------------------------------------------------------------------------

    def run(self, from_step: int = 0) -> Deployment:
        """Steps from `from_step` to the end; returns the finished deployment.

        Raises DeploymentFailed after a rollback. Always releases the lease.
        """
        options = self.deployment.options
        deadline = None if options.deadline is None else self.clock.monotonic() + options.deadline
        try:
            with self.interrupts:
                try:
                    return self._steps(from_step, deadline)
                except Interrupted as e:
                    return self.fail("signal", f"interrupted by {e.name}", self.clock.now())
                except DeploymentFailed:
                    raise  # already given back (or said why it could not be)
                except Exception as e:  # noqa: BLE001 - whatever failed, traffic goes back
                    return self.fail("error", f"{type(e).__name__}: {e}", self.clock.now())
        finally:
            self.lease.release()

    def _steps(self, from_step: int, deadline: float | None) -> Deployment:
        d, options = self.deployment, self.deployment.options
        if from_step == 0:
            self.notifier.event(d, EventType.STARTED, f"towards {options.target}")
        for index in range(from_step, len(d.plan)):
            weights = d.plan[index]
            last = index == len(d.plan) - 1
            if not self.full and (
                options.mode == "manual" or (options.mode == "assisted" and last)
            ):
                failure = self.pause(index, deadline)
                if failure is not None:
                    return self.fail(*failure, self.clock.now())
            self.lease.confirm()  # never move traffic on a lease another process took over
            self.record(EventType.STEP_INTENT, index=index, weights=weights)
            list(self.pool.map(lambda s, w=weights: s.router.set(w), self.services))
            expected = [weights] * len(self.services)
            if not wait_served(
                self.services, expected, options.verify_timeout, self.pool, self.clock, self.log
            ):
                return self.fail(
                    "not served",
                    f"the load balancer or Gateway did not serve {describe(weights)} within "
                    f"{options.verify_timeout:g}s",
                    self.clock.now(),
                )
            d.step = index
            self.record(EventType.STEP, index=index, weights=weights)
            self.notifier.event(d, EventType.STEP, describe(weights))
            bake = 0.0 if self.full else options.bake
            self.log(
                f"Step {index + 1}/{len(d.plan)}: serving {describe(weights)}; "
                + (f"baking {bake:g}s under guards." if bake else "guards checked once.")
            )
            failure = self.watch(weights, bake, deadline)
            if failure is not None:
                return self.fail(*failure, self.clock.now())
        failure = self.verify(deadline)
        if failure is not None:
            return self.fail(*failure, self.clock.now())
        with self.interrupts.shielded():
            if options.kind == "drill":
                # A drill gives the traffic back on purpose: that restore is what it measures.
                self.restore("drill", self.clock.now())
                d.status = Status.DRILLED
            else:
                d.status = Status.SUCCEEDED
            return self.finish()

    def verify(self, deadline: float | None) -> tuple[str, str] | None:
        """Post-deployment verification: keep baking at the last step under every guard and
        the analysis (`--verify-for`) before the shift counts as succeeded."""
        d = self.deployment
        seconds = d.options.verify_for
        if d.options.kind != "shift" or not seconds or self.full:
            return None
        self.record(EventType.VERIFYING, seconds=seconds)
        self.log(f"Verifying {describe(d.plan[-1])} for {seconds:g}s under every guard.")
        failure = self.watch(d.plan[-1], seconds, deadline)
        if failure is None and self.full:  # `cutover promote --full`: said, never "verified"
            self.log("Verification cut short by `cutover promote --full`.")
        elif failure is None:
            self.record(EventType.VERIFIED, seconds=seconds)
        return failure

    def serving_before(self, index: int) -> Weights:
        """What is served before step `index`: the previous step, or what the shift found
        (every color that any service served)."""
        if index > 0:
            return self.deployment.plan[index - 1]
        found = snapshot_weights(self.services, self.deployment)
        return {c: max(w[c] for w in found) for c in COLORS}

    def pause(self, index: int, deadline: float | None) -> tuple[str, str] | None:
        """Wait for `cutover promote` before step `index`, with every guard still running."""
        d = self.deployment
        weights = d.plan[index]
        d.status = Status.PAUSED
        self.record(EventType.PAUSED, before=weights, index=index)
        self.notifier.event(d, EventType.PAUSED, f"before {describe(weights)}")
        self.log(
            f"Paused before {describe(weights)}; guards keep watching. Run `cutover promote` "
            "to continue or `cutover abort` to give traffic back."
        )
        failure = self.watch(self.serving_before(index), None, deadline, pause_index=index)
        if failure is not None:
            return failure
        d.status = Status.IN_PROGRESS
        self.record(EventType.PROMOTED, index=index, full=self.full)
        self.notifier.event(d, EventType.PROMOTED, f"to {describe(weights)}")
        return None

    def watch(
        self,
        weights: Weights,
        seconds: float | None,
        deadline: float | None,
        pause_index: int | None = None,
    ) -> tuple[str, str] | None:
        """Poll the guards of `weights` for `seconds` (None: until promoted); (reason, detail)
        of the first failure, abort or deadline, or None when the wait is over."""
        d, options = self.deployment, self.deployment.options
        guards = guards_for(self.services, options, weights, d.started_at, self.clock.now)
        inconclusive = Tally(options.max_inconclusive)
        started = self.clock.monotonic()
        end = None if seconds is None else started + seconds
        # progress at most every 10 s, or every 10% of the bake, whichever is rarer
        every = max(PROGRESS_SECONDS, 0.1 * seconds) if seconds else PAUSE_PROGRESS_SECONDS
        told = started
        first = True
        while True:
            verdicts = self.poll(guards, weights, paused=pause_index is not None)
            now = self.clock.monotonic()
            if now - told >= every:  # tell, and keep the journal fresh for `status --watch`
                told = now
                self.log(progress(now - started, seconds, verdicts))
                self.journal.save(d)
            elif first:  # the wait's first verdicts are seen at once
                self.journal.save(d)
            first = False
            failed = [v for v in verdicts if v.state == "fail"]
            if failed:
                return "guard failed", "; ".join(f"{v.guard}: {v.detail}" for v in failed)
            too_many = inconclusive.add(verdicts)
            if too_many:
                return "guards inconclusive", too_many
            if self.lease.lost.is_set():
                self.lease.confirm()
            command = self.journal.requested(self.scope, d.id)
            if command == ABORT:
                return "aborted", "cutover abort was requested"
            if command == PROMOTE_FULL or (
                pause_index is not None and command == promote_request(pause_index)
            ):
                self.full = self.full or command == PROMOTE_FULL
                self.journal.request(self.scope, d.id, "")
                return None
            if deadline is not None and self.clock.monotonic() >= deadline:
                return "deadline", "the shift ran past its --deadline"
            if end is not None and self.clock.monotonic() >= end:
                return None
            left = options.interval if end is None else end - self.clock.monotonic()
            self.clock.sleep(max(0.0, min(options.interval, left)))

    def poll(self, guards: list[Guard], weights: Weights, paused: bool) -> list[Verdict]:
        """Check every guard once and keep the sample (while paused, only when a verdict
        changed or a minute passed, so a long pause does not grow the journal)."""
        verdicts: list[Verdict] = list(self.pool.map(lambda g: g.check(), guards))
        sample = sample_of(verdicts, weights, self.clock.now())
        self.deployment.add_sample(sample, sparse=paused)
        return verdicts

    # -- giving traffic back -----------------------------------------------------------------

    def restore(self, reason: str, detected_at: float) -> None:
        """Write every snapshot back at once, verify it is served, then journal the timings."""
        d = self.deployment
        restored = restore_snapshot(self.services, d, self.pool, self.clock, self.log)
        found = describe(snapshot_weights(self.services, d)[0])
        if restored.errors:
            self._journal_after_restore(
                EventType.RESTORE_FAILED, reason=reason, errors=restored.errors
            )
            raise DeploymentFailed(
                f"deployment {d.id}: restoring the weights it found failed on "
                f"{len(restored.errors)} listener(s) or route(s) ({'; '.join(restored.errors)}); "
                "run `cutover rollback` to retry"
            )
        d.timings = Timings(
            detected_at, restored.started, restored.accepted, restored.done, restored.verified
        )
        written = restored.accepted - detected_at
        if restored.verified:
            self.log(
                f"Restored the weights it found ({found}) in {written:.3f}s, verified served "
                f"in {restored.done - detected_at:.3f}s."
            )
        else:
            self.log(
                f"Restored weights written ({found}) in {written:.3f}s; not yet confirmed "
                f"served after {d.options.verify_timeout:g}s."
            )
        self._journal_after_restore(EventType.RESTORED, reason=reason, verified=restored.verified)

    def _journal_after_restore(self, kind: str, **detail: object) -> None:
        """Journal after traffic was given back; a journal that cannot be written then must
        not hide that the traffic is back."""
        try:
            self.record(kind, **detail)
        except Exception as e:  # noqa: BLE001
            raise DeploymentFailed(
                f"deployment {self.deployment.id}: traffic was given back "
                f"({describe(snapshot_weights(self.services, self.deployment)[0])}), but the "
                f"journal could not be updated ({type(e).__name__}: {e})"
            ) from None

    def fail(self, reason: str, detail: str, detected_at: float) -> Deployment:
        """Give the traffic back, record why, and raise DeploymentFailed."""
        d = self.deployment
        self.log(f"Rolling back: {reason}: {detail}")
        with self.interrupts.shielded():
            self._drain()
            self.restore(reason, detected_at)
            d.status = Status.ROLLED_BACK
            d.failure = Failure(reason, detail)
            self.notifier.event(d, Status.ROLLED_BACK, f"{reason}: {detail}")
            self.finish()
        raise DeploymentFailed(
            f"deployment {d.id} rolled back ({reason}: {detail}); {outcome(self.services, d)}"
        )

    def _drain(self) -> None:
        """Let calls still in flight finish before the restore (a step's write interrupted by
        a signal must not land after the snapshot is written back)."""
        busy, self.pool = self.pool, ThreadPoolExecutor(max_workers=busy_workers(self.services))
        busy.shutdown(wait=True)

    def finish(self) -> Deployment:
        d = self.deployment
        d.finished_at = self.clock.now()
        self._journal_after_restore(EventType.FINISHED, status=str(d.status))
        self.notifier.event(d, EventType.FINISHED, str(d.status))
        self.notifier.metrics(d)
        return d

    def rollback(
        self,
        deployment: Deployment,
        ensure_capacity: Callable[[str], None],
        by: Failure = ROLLBACK_COMMAND,
    ) -> Deployment:
        """Restore a deployment's snapshot, e.g. after its process was killed (`by` says who
        and why): restore first, then journal."""
        self._deployment = deployment
        self.lease.acquire(deployment.id)
        try:
            with self.interrupts, self.interrupts.shielded():
                detected = self.clock.now()
                for color in COLORS:
                    if any(w[color] > 0 for w in snapshot_weights(self.services, deployment)):
                        ensure_capacity(color)
                deployment.event(
                    EventType.ROLLBACK_REQUESTED, detected, previousStatus=str(deployment.status)
                )
                self.restore(by.detail, detected)
                if deployment.status.active or deployment.failure is None:
                    deployment.failure = by
                deployment.status = Status.ROLLED_BACK
                self.notifier.event(deployment, Status.ROLLED_BACK, by.detail)
                return self.finish()
        finally:
            self.lease.release()
